using System.Buffers;
using System.Diagnostics;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary><see cref="KvStore.ExecuteBatch(KvSession, ReadOnlySpan{KvCommand}, long, RespWriter, IAofSink, ref long)"/>
/// carries <see cref="KvStore.CommandObserver"/>'s clock from one command to the next (§217): a command's time starts
/// at the reading passed in (the previous command's end), and the reading at its end comes back. Checks of order only,
/// no timing threshold.</summary>
public class CommandClockTests
{
    [Fact]
    public void A_command_time_starts_at_the_clock_passed_in_and_its_end_comes_back()
    {
        var store = new KvStore(RespLimits.Default);
        var seen = new List<(string Name, TimeSpan Elapsed)>();
        store.CommandObserver = (_, command, elapsed, _) => seen.Add((command.GetString(0), elapsed));
        var session = new KvSession();
        var writer = new RespWriter(new ArrayBufferWriter<byte>());
        KvCommand[] batch = [KvCommand.Create("SET", "k", "v"), KvCommand.Create("GET", "k")];

        long before = Stopwatch.GetTimestamp();
        long start = before - Stopwatch.Frequency; // one second before: the command's time counts from here
        long clock = start;
        store.ExecuteBatch(session, batch.AsSpan(0, 1), 0, writer, null, ref clock);
        Assert.True(clock >= before, "the clock that comes back is the command's end");
        Assert.True(seen[0].Elapsed >= TimeSpan.FromSeconds(1), $"SET's time starts at the clock passed in ({seen[0].Elapsed})");

        long afterFirst = clock;
        store.ExecuteBatch(session, batch.AsSpan(1, 1), 0, writer, null, ref clock);
        Assert.True(clock >= afterFirst);
        Assert.Equal(Stopwatch.GetElapsedTime(afterFirst, clock), seen[1].Elapsed);
        Assert.Equal(["set", "get"], seen.Select(s => s.Name.ToLowerInvariant()));
    }

    [Fact]
    public void Without_an_observer_the_clock_is_left_alone()
    {
        var store = new KvStore(RespLimits.Default);
        long clock = 0;
        store.ExecuteBatch(new KvSession(), [KvCommand.Create("SET", "k", "v")], 0, new RespWriter(new ArrayBufferWriter<byte>()), null, ref clock);
        Assert.Equal(0, clock);
    }
}
