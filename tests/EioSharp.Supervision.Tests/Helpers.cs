using EioSharp.Supervision;
using EioSharp.Time;

namespace EioSharp.Supervision.Tests;

internal static class Helpers
{
    public static Action<SupervisorReport> Trace { get; } = r => TraceLog.Line(r.ToString());

    /// <summary>A child that traces its start and its cancellation, and otherwise waits to be cancelled.</summary>
    public static ChildSpec Worker(string id, RestartType restart = RestartType.Permanent) => new(id, async ctx =>
    {
        TraceLog.Line($"{id}: start {ctx.Run}");
        ctx.Ready();
        try
        {
            await Fiber.AwaitCancelAsync();
        }
        catch (CancelledException)
        {
            TraceLog.Line($"{id}: cancelled");
            throw;
        }
    })
    { Restart = restart };

    /// <summary>A child that, on its first run only, ends after <paramref name="after"/>: normally, or with an exception.</summary>
    public static ChildSpec ExitsOnce(string id, MonoClock clock, TimeSpan after, bool fail, RestartType restart) => new(id, async ctx =>
    {
        TraceLog.Line($"{id}: start {ctx.Run}");
        ctx.Ready();
        if (ctx.Run == 1)
        {
            await clock.SleepAsync(after);
            if (fail)
            {
                throw new InvalidOperationException($"{id} broke");
            }

            TraceLog.Line($"{id}: done");
            return;
        }

        await Fiber.AwaitCancelAsync();
    })
    { Restart = restart };

    /// <summary>Asserts a transcript; on a mismatch also writes the actual one to $TMPDIR/eiosharp-sup/NAME.txt for review.</summary>
    public static void Expect(string expected, string actual, [System.Runtime.CompilerServices.CallerMemberName] string name = "")
    {
        if (expected != actual)
        {
            var dir = Path.Combine(Path.GetTempPath(), "eiosharp-sup");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, name + ".txt"), actual);
        }

        Assert.Equal(expected, actual);
    }

    public static string T(MonoClock clock) => $"t={clock.Now.TotalSeconds}";
}
