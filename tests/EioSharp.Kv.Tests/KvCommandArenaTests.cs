using System.Text;
using Xunit.Abstractions;

namespace EioSharp.Kv.Tests;

/// <summary>Commands parsed in place (<see cref="KvCommandArena"/>): views over the receive buffer, no allocation per
/// command once the arena is warm; owned copies for whoever keeps a command.</summary>
public sealed class KvCommandArenaTests(ITestOutputHelper output)
{
    private static byte[] Pipeline(int commands)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < commands; i++)
        {
            string key = $"key:{i:D6}";
            sb.Append("*3\r\n$3\r\nSET\r\n$").Append(key.Length).Append("\r\n").Append(key).Append("\r\n$16\r\nvalue-0123456789\r\n");
        }

        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    // Parses every command of the buffer as a connection's batch does; returns the fewest bytes allocated by one of the
    // rounds after the first. The fewest, not the last: the runtime itself may allocate on this thread in any one round
    // (CI saw 160 bytes in one round of 1,000 commands: a tier-up or call-counting step of the JIT, not the parser); an
    // allocation per command shows in every round.
    private static long ParseRounds(byte[] buffer, bool inPlace, int rounds, out int commands)
    {
        var arena = new KvCommandArena();
        var reader = new RespRequestReader(new RespParser(RespLimits.Default)) { Arena = inPlace ? arena : null };
        long allocated = long.MaxValue;
        commands = 0;
        for (int round = 0; round < rounds; round++)
        {
            arena.Reset(buffer);
            long before = GC.GetAllocatedBytesForCurrentThread();
            int pos = 0;
            commands = 0;
            while (reader.TryRead(buffer.AsSpan(pos), pos, out int consumed, out KvCommand? command))
            {
                pos += consumed;
                commands++;
                if (command.Count != 3)
                {
                    throw new InvalidOperationException($"command {commands}: {command}"); // (Assert.Equal would allocate)
                }
            }

            long thisRound = GC.GetAllocatedBytesForCurrentThread() - before;
            if (round > 0) allocated = Math.Min(allocated, thisRound);
        }

        return allocated;
    }

    [Fact]
    public void Whole_commands_parsed_in_place_allocate_nothing_once_the_arena_is_warm()
    {
        byte[] buffer = Pipeline(1000);
        long inPlace = ParseRounds(buffer, inPlace: true, rounds: 5, out int n1);
        long owned = ParseRounds(buffer, inPlace: false, rounds: 5, out int n2);
        output.WriteLine($"{n1} SET commands: in place {inPlace} bytes ({(double)inPlace / n1:0.0} per command); " +
                         $"owned {owned} bytes ({(double)owned / n2:0.0} per command)");
        Assert.Equal(1000, n1);
        Assert.Equal(1000, n2);
        Assert.Equal(0, inPlace);
        Assert.True(owned >= 1000 * 3 * 24, $"owned commands allocated {owned} bytes"); // three objects per command
    }

    [Fact]
    public void A_view_reads_the_receive_buffer_and_an_owned_copy_does_not()
    {
        byte[] buffer = Encoding.ASCII.GetBytes("*2\r\n$3\r\nGET\r\n$5\r\nalpha\r\n");
        var arena = new KvCommandArena();
        arena.Reset(buffer);
        var reader = new RespRequestReader(new RespParser(RespLimits.Default)) { Arena = arena };
        Assert.True(reader.TryRead(buffer, 0, out int consumed, out KvCommand? view));
        Assert.Equal(buffer.Length, consumed);
        Assert.True(view.IsView);
        KvCommand owned = view.ToOwned();
        Assert.False(owned.IsView);
        Assert.Same(owned, owned.ToOwned());
        "omega"u8.CopyTo(buffer.AsSpan(buffer.Length - 7)); // the next read overwrites the buffer
        Assert.Equal("GET omega", view.ToString());
        Assert.Equal("GET alpha", owned.ToString());
        Assert.Equal(8, owned.DataLength);
        Assert.Equal(8, view.DataLength);
    }

    [Fact]
    public void Without_an_offset_or_an_arena_commands_own_their_data()
    {
        byte[] buffer = Encoding.ASCII.GetBytes("*1\r\n$4\r\nPING\r\n");
        var reader = new RespRequestReader(new RespParser(RespLimits.Default)) { Arena = new KvCommandArena() };
        Assert.True(reader.TryRead(buffer, out _, out KvCommand? command)); // the span overload: no buffer to point into
        Assert.False(command.IsView);
    }

    /// <summary>A view parsed whole in place is logged to the AOF as its received bytes (KvCommand.TryGetEncoded): the
    /// bytes must be exactly what encoding its arguments gives (Redis's AOF form), for every command of a buffer that
    /// starts with other bytes (the view's range is an offset into the receive array), lower-case names, an empty and a
    /// binary argument; an inline command and an owned copy are encoded from their arguments.</summary>
    [Fact]
    public void A_view_parsed_whole_is_logged_as_the_bytes_received()
    {
        byte[] requests = Encoding.ASCII.GetBytes(
            "*3\r\n$3\r\nset\r\n$2\r\nk1\r\n$0\r\n\r\n" +
            "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$5\r\na\r\nb\0\r\n" +
            "SET inline \"a b\"\r\n" +
            "*1\r\n$4\r\nPING\r\n");
        byte[] buffer = [.. "garbage before"u8, .. requests]; // the batch's bytes start inside the receive array
        int start = buffer.Length - requests.Length;
        var arena = new KvCommandArena();
        arena.Reset(buffer);
        var reader = new RespRequestReader(new RespParser(RespLimits.Default)) { Arena = arena };
        int pos = start;
        var encodedAsReceived = new List<bool>();
        while (reader.TryRead(buffer.AsSpan(pos), pos, out int consumed, out KvCommand? command))
        {
            var logged = new System.Buffers.ArrayBufferWriter<byte>();
            AofWriter.WriteCommand(logged, command);
            var expected = new System.Buffers.ArrayBufferWriter<byte>();
            AofWriter.WriteArrayHeader(expected, command.Count);
            for (int i = 0; i < command.Count; i++) AofWriter.WriteBulkString(expected, command[i]);
            Assert.Equal(Encoding.ASCII.GetString(expected.WrittenSpan), Encoding.ASCII.GetString(logged.WrittenSpan));
            var owned = new System.Buffers.ArrayBufferWriter<byte>();
            AofWriter.WriteCommand(owned, command.ToOwned());
            Assert.Equal(expected.WrittenSpan.ToArray(), owned.WrittenSpan.ToArray());
            encodedAsReceived.Add(command.TryGetEncoded(out ReadOnlySpan<byte> raw) && raw.SequenceEqual(buffer.AsSpan(pos, consumed)));
            Assert.False(command.ToOwned().TryGetEncoded(out _));
            pos += consumed;
        }

        Assert.Equal(buffer.Length, pos);
        Assert.Equal([true, true, false, true], encodedAsReceived); // the inline command is not
    }
}

/// <summary>The store's reused command buffer (<see cref="KvCommandBuilder"/>): the nested LPOP of a blocked pop, the
/// XCLAIM effects of XREADGROUP, redis.call's command.</summary>
public sealed class KvCommandBuilderTests
{
    [Fact]
    public void Builds_a_view_that_the_next_command_overwrites_and_an_owned_copy_keeps()
    {
        var builder = new KvCommandBuilder();
        KvCommand first = builder.Start().Add("XCLAIM"u8).Add("stream"u8).Add(-42).Add(new StreamId(1700000000000, 7)).Add(""u8).Build();
        Assert.True(first.IsView);
        Assert.Equal(5, first.Count);
        Assert.Equal("XCLAIM stream -42 1700000000000-7 ", first.ToString());
        Assert.Equal(0, first[4].Length);
        Assert.Equal("xclaim", first.Info?.Name);
        KvCommand owned = first.ToOwned();
        Assert.False(owned.IsView);
        Assert.Same(first.Info, owned.Info);
        Assert.Equal(first.DataLength, owned.DataLength);

        KvCommand second = builder.Start().Add("LPOP"u8).Add(Encoding.ASCII.GetBytes(new string('k', 1000))).Build(); // grows the buffer
        Assert.Same(first, second); // one view object, pointed at the new arguments
        Assert.Equal("LPOP " + new string('k', 1000), second.ToString());
        Assert.Equal("lpop", second.Info?.Name); // looked up again
        Assert.Equal("XCLAIM stream -42 1700000000000-7 ", owned.ToString());
        Assert.Equal(5, owned.Count);
    }

    [Fact]
    public void A_warm_builder_allocates_nothing_per_command()
    {
        var builder = new KvCommandBuilder();
        for (int i = 0; i < 3; i++) builder.Start().Add("XGROUP"u8).Add("SETID"u8).Add("key"u8).Add(new StreamId(5, 6)).Add(i).Build();
        int total = 0;
        long allocated = AllocationMeter.Measure(() => // the fewest bytes of 1,000 builds over warm rounds
        {
            for (int i = 0; i < 1000; i++)
            {
                total += builder.Start().Add("XGROUP"u8).Add("SETID"u8).Add("key"u8).Add(new StreamId((ulong)i, 6)).Add(i).Build().Count;
            }
        });

        Assert.Equal(6 * 5000, total); // the warm-up round and five counted rounds
        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(9, 9)]
    [InlineData(10, 10)]
    [InlineData(15, 99)]
    [InlineData(100, 100)]
    [InlineData(3, 70_000)] // past the kept size: the buffer grows in Reserve
    [InlineData(1_000, 1)] // a four-digit header
    public void A_log_builders_command_is_its_own_AOF_encoding(int count, int length)
    {
        var builder = new KvCommandBuilder(encoded: true); // the store's log builder
        for (int round = 0; round < 2; round++) // the second round reuses the (possibly grown, then dropped) buffer
        {
            builder.Start().Add("XCLAIM"u8);
            for (int i = 1; i < count; i++)
            {
                if (i % 3 == 1) builder.Add(Encoding.ASCII.GetBytes(new string((char)('a' + i % 26), length)));
                else if (i % 3 == 2) builder.Add((long)i * -7919 - length);
                else builder.Add(new StreamId((ulong)(1700000000000 + i), (ulong)length));
            }

            KvCommand built = builder.Build();
            Assert.True(built.TryGetEncoded(out ReadOnlySpan<byte> encoded));
            var expected = new System.Buffers.ArrayBufferWriter<byte>();
            AofWriter.WriteCommand(expected, built.ToOwned()); // an owned command is encoded argument by argument
            Assert.Equal(Encoding.ASCII.GetString(expected.WrittenSpan), Encoding.ASCII.GetString(encoded));
            var copied = new System.Buffers.ArrayBufferWriter<byte>();
            AofWriter.WriteCommand(copied, built);
            Assert.True(copied.WrittenSpan.SequenceEqual(expected.WrittenSpan));
            Assert.Equal(count, built.Count);
        }
    }

    [Fact]
    public void A_builder_for_commands_the_store_runs_formats_no_encoding()
    {
        KvCommand built = new KvCommandBuilder().Start().Add("LPOP"u8).Add("key"u8).Build(); // a nested LPOP, redis.call
        Assert.False(built.TryGetEncoded(out _));
        var encoded = new System.Buffers.ArrayBufferWriter<byte>();
        AofWriter.WriteCommand(encoded, built); // logged all the same, argument by argument
        Assert.Equal("*2\r\n$4\r\nLPOP\r\n$3\r\nkey\r\n", Encoding.ASCII.GetString(encoded.WrittenSpan));
    }

    [Fact]
    public void A_command_needs_its_name()
    {
        Assert.Throws<InvalidOperationException>(() => new KvCommandBuilder().Start().Build());
    }

    [Fact]
    public void Each_view_gets_its_own_names_table_entry_whatever_the_previous_views_name()
    {
        // §221: the arena sets a view's entry from the previous view's when the name's bytes are the same.
        string[] names = ["SET", "SET", "set", "GET", "NOSUCH", "NOSUCH", "GET", "SETX", "SE", "SET", "CLIENT", "ping"];
        var sb = new StringBuilder();
        foreach (string name in names)
        {
            sb.Append("*2\r\n$").Append(name.Length).Append("\r\n").Append(name).Append("\r\n$1\r\nk\r\n");
        }

        byte[] buffer = Encoding.ASCII.GetBytes(sb.ToString());
        var arena = new KvCommandArena();
        var reader = new RespRequestReader(new RespParser(RespLimits.Default)) { Arena = arena };
        for (int round = 0; round < 2; round++) // the second round: the views reused, pointed at the same names again
        {
            arena.Reset(buffer);
            int pos = 0;
            int i = 0;
            while (reader.TryRead(buffer.AsSpan(pos), pos, out int consumed, out KvCommand? command))
            {
                pos += consumed;
                Assert.True(command.IsView);
                Assert.Same(KvCommandTable.Find(Encoding.ASCII.GetBytes(names[i])), command.Info);
                i++;
            }

            Assert.Equal(names.Length, i);
        }
    }
}
