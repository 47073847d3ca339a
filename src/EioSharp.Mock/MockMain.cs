using System.Text;
using EioSharp.Domains;
using EioSharp.IO;
using EioSharp.Time;

namespace EioSharp.Mock;

/// <summary>The deterministic backend for tests: one domain, a fixed run order, and a virtual clock.</summary>
/// <remarks>
/// Eio: <c>Eio_mock.Backend.run</c>. Virtual time starts at 0 (the Unix epoch for the wall clock) and, when no fiber can
/// run, jumps to the next timer's deadline, so sleeps take no real time. When nothing can run and no timer is pending
/// while the main fiber is unfinished, the run fails with <see cref="DeadlockDetectedException"/> (after waiting a grace of
/// real time, 5 s unless <c>deadlockGrace</c> says otherwise, for work posted by ordinary .NET tasks the fibers may be awaiting, such as <c>Task.Run</c> or <c>Task.Delay</c>).
/// <see cref="TraceLog.Line(string)"/> lines start with <c>+</c>, as in Eio's transcripts.
/// <para><b>Domains</b>: <see cref="Stdenv.DomainManager"/> runs its function in a new fiber of the same domain (as Eio_mock's
/// domain manager does), so tests stay deterministic.</para>
/// <para><b>Network</b>: there is no real network. Pass a scripted <see cref="MockNet"/> as <c>net</c>
/// (<c>MockMain.Run(env =&gt; ..., net: mocknet)</c>) and <see cref="Stdenv.Net"/> returns it; without one,
/// <see cref="Stdenv.Net"/> throws <see cref="NotSupportedException"/>.</para>
/// <para><b>Filesystem</b>: <see cref="Stdenv.Fs"/> and <see cref="Stdenv.Cwd"/> throw <see cref="NotSupportedException"/>:
/// real file operations complete on other threads, outside virtual time, so the idle domain would be reported as
/// deadlocked. Test filesystem code with <see cref="EioMain"/> and a temporary directory.</para>
/// <para><b>Standard streams</b>: <see cref="Stdenv.Stdin"/> is empty; <see cref="Stdenv.Stdout"/> and <see cref="Stdenv.Stderr"/>
/// are <see cref="MockFlow"/>s labelled <c>stdout</c>/<c>stderr</c> that trace each write; <see cref="Stdenv.SecureRandom"/>
/// gives the same bytes on every run.</para>
/// </remarks>
public static class MockMain
{
    /// <summary>Runs <paramref name="main"/> on the mock backend.</summary>
    /// <param name="main">The test body.</param>
    /// <param name="net">The network <see cref="Stdenv.Net"/> returns (a scripted <see cref="MockNet"/>); null: none, and
    /// <see cref="Stdenv.Net"/> throws <see cref="NotSupportedException"/>.</param>
    /// <param name="deadlockGrace">How long (real time) an idle run with no timer waits for work posted by other threads
    /// before it reports a deadlock; null: 5 s (a thread pool starved by a busy machine can take over a second to run a
    /// <c>Task.Delay</c> callback). Applies to this run only.</param>
    /// <exception cref="DeadlockDetectedException">Nothing can run and the main fiber has not finished.</exception>
    /// <exception cref="Exception">Whatever <paramref name="main"/> throws.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="deadlockGrace"/> is negative.</exception>
    public static void Run(Func<Stdenv, Task> main, MockNet? net = null, TimeSpan? deadlockGrace = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        Run<bool>(async env => { await main(env); return true; }, net, deadlockGrace);
    }

    /// <summary>Runs <paramref name="main"/> on the mock backend and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The test body.</param>
    /// <param name="net">The network <see cref="Stdenv.Net"/> returns (a scripted <see cref="MockNet"/>); null: none, and
    /// <see cref="Stdenv.Net"/> throws <see cref="NotSupportedException"/>.</param>
    /// <param name="deadlockGrace">How long (real time) an idle run with no timer waits for work posted by other threads
    /// before it reports a deadlock; null: 5 s (a thread pool starved by a busy machine can take over a second to run a
    /// <c>Task.Delay</c> callback). Applies to this run only.</param>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="DeadlockDetectedException">Nothing can run and the main fiber has not finished.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="deadlockGrace"/> is negative.</exception>
    public static T Run<T>(Func<Stdenv, Task<T>> main, MockNet? net = null, TimeSpan? deadlockGrace = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        if (deadlockGrace < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(deadlockGrace), deadlockGrace, "a duration >= 0");
        }

        var time = new VirtualTimeSource();
        var domain = new Domain("mock", time, poller: new MockPoller(time, deadlockGrace ?? MockPoller.DefaultDeadlockGrace));
        var env = new Stdenv(
            new VirtualClock(time), new VirtualMonoClock(time), new MockDomainManager(), "mock",
            new BufferSource(ReadOnlyMemory<byte>.Empty), new MockFlow("stdout"), new MockFlow("stderr"), new SeededRandomSource(0),
            net);
        return domain.RunMain(_ => main(env));
    }

    /// <summary>Runs <paramref name="main"/> on the mock backend and returns its transcript: every trace line, then the exception if it failed.</summary>
    /// <param name="main">The test body; use <see cref="TraceLog.Line(string)"/> to record what happens.</param>
    /// <param name="net">The network <see cref="Stdenv.Net"/> returns (a scripted <see cref="MockNet"/>); null: none.</param>
    /// <returns>The lines, each ending in a newline; a failure adds <c>Exception: TypeName: message</c>.</returns>
    public static string Trace(Func<Stdenv, Task> main, MockNet? net = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        var sb = new StringBuilder();
        var writer = new StringWriter(sb) { NewLine = "\n" };
        try
        {
            Run(env => TraceLog.WithWriterAsync(writer, () => main(env)), net);
        }
        catch (Exception ex)
        {
            sb.Append("Exception: ").Append(Describe(ex)).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>Describes an exception the way transcripts show it: type name and message, with inner failures of a <see cref="MultipleException"/>.</summary>
    /// <param name="ex">The exception.</param>
    /// <returns>The description.</returns>
    public static string Describe(Exception ex) => ex switch
    {
        MultipleException m => "Multiple: [" + string.Join("; ", m.InnerExceptions.Select(Describe)) + "]",
        CancelledException c => "Cancelled: " + Describe(c.Reason),
        _ => ex.GetType().Name + ": " + ex.Message,
    };

    /// <summary>Runs "domains" as fibers of the mock domain.</summary>
    private sealed class MockDomainManager : DomainManager
    {
        public override Task<T> RunAsync<T>(Func<Task<T>> body, string? name = null) =>
            Switch.RunAsync(_ => body(), name ?? "mock-domain");
    }
}
