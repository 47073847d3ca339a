using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>Starting fibers, waiting for them, and checking cancellation.</summary>
/// <remarks>
/// Eio: <c>Eio.Fiber</c>. A fiber is an async function started by the library on the current domain, owned by a switch.
/// <para><b>Scheduling</b> (S12): <see cref="Fork(Switch, Func{Task})"/> runs the child at once, up to its first suspension,
/// then the parent continues, ahead of fibers already queued. Woken fibers go to the back of the domain's FIFO run queue.</para>
/// </remarks>
public static partial class Fiber
{
    /// <summary>Starts <paramref name="body"/> as a new fiber owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">The owning switch; it waits for the fiber, and fails if the fiber throws (S2).</param>
    /// <param name="body">The fiber's code.</param>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> belongs to another domain (S17).</exception>
    /// <remarks>Eio: <c>Fiber.fork</c>. If the switch is finished or cancelled the child is not run and nothing is thrown (S6).</remarks>
    public static void Fork(Switch sw, Func<Task> body) => Fork(sw, body, null);

    /// <summary>Starts <paramref name="body"/> as a new named fiber owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">The owning switch.</param>
    /// <param name="body">The fiber's code.</param>
    /// <param name="name">A name for traces and the watchdog.</param>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> belongs to another domain (S17).</exception>
    /// <remarks>Eio: <c>Fiber.fork</c>.</remarks>
    public static void Fork(Switch sw, Func<Task> body, string? name)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(body);
        if (!sw.TryAddFiber(daemon: false))
        {
            return;
        }

        var running = sw.Domain.RunningFrame;
        RunForked(sw, body, daemon: false, name);
        sw.Domain.RunningFrame = running;
    }

    /// <summary>Starts a daemon fiber: it does not keep <paramref name="sw"/> open (S8).</summary>
    /// <param name="sw">The owning switch.</param>
    /// <param name="body">The fiber's code; typically a loop that runs until cancelled.</param>
    /// <param name="name">A name for traces (optional).</param>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> belongs to another domain.</exception>
    /// <remarks>Eio: <c>Fiber.fork_daemon</c>. When the body and all non-daemon fibers are done, daemons are cancelled and that cancellation is not reported.</remarks>
    public static void ForkDaemon(Switch sw, Func<Task> body, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(body);
        if (!sw.TryAddFiber(daemon: true))
        {
            return;
        }

        var running = sw.Domain.RunningFrame;
        RunForked(sw, body, daemon: true, name);
        sw.Domain.RunningFrame = running;
    }

    /// <summary>Runs a forked fiber's body up to its first suspension, without an async wrapper (issue 20: no state machine
    /// box, no synchronization-context continuation per fork). The fiber's frame is set in the execution context for the
    /// body only: the caller's fiber is installed again before this returns (issue 20: the frame is the installed
    /// synchronization context, not an <see cref="AsyncLocal{T}"/>, so a fork makes no execution context).</summary>
    private static void RunForked(Switch sw, Func<Task> body, bool daemon, string? name)
    {
        var callerContext = ExecutionContext.Capture();
        var frame = FiberInfo.Create(name, sw.CancelContext, sw);
        frame.Daemon = daemon;
        var callerSync = FiberFrame.Install(frame);
        try
        {
            if (EioTrace.On)
            {
                EioTrace.FiberCreated(frame, sw.Domain.RunningFrame); // the parent: still the running frame
            }

            sw.Domain.RunningFrame = frame;
            sw.AddLive(frame);

            Task task;
            try
            {
                task = body();
            }
            catch (Exception ex)
            {
                ForkedFiberEnd.Finish(frame, ex);
                return;
            }

            if (task.IsCompleted)
            {
                ForkedFiberEnd.Finish(frame, task);
            }
            else
            {
                RegisterBodyEnd(frame, task);
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(callerSync);
            if (callerContext is not null)
            {
                ExecutionContext.Restore(callerContext);
            }
        }
    }

    /// <summary>The continuation of every suspended forked body: one delegate for all forks (issue 20: before, an end object
    /// pooled per thread up to 4,096, and a delegate bound to the fiber beyond that, 64 B). It finds its fiber as the
    /// installed synchronization context: the continuation is registered with the fiber installed, so .NET either runs it
    /// inline where that same context is installed (the body completed inside the fiber's own code) or posts it through
    /// the fiber (<see cref="FiberFrame.Post"/>), and the run loop installs the fiber to run it. Either way the fiber is
    /// <see cref="SynchronizationContext.Current"/> when it runs.</summary>
    private static readonly Action s_bodyEnded = static () => ContinuationFiber().BodyCompleted();

    /// <summary>Makes the end of <paramref name="fiber"/> run when <paramref name="body"/>, its suspended body, completes.</summary>
    private static void RegisterBodyEnd(ForkedFiber fiber, Task body)
    {
        fiber.Body = body;
        RegisterFiberContinuation(fiber, body, s_bodyEnded);
    }

    /// <summary>Registers <paramref name="continuation"/> (a static delegate that finds its fiber with
    /// <see cref="ContinuationFiber"/>) to run when <paramref name="task"/> completes, with <paramref name="fiber"/>
    /// as the captured synchronization context, like the await of an async wrapper: it then runs inline when the task
    /// completes in the fiber's own code on the domain (without a context .NET would not inline under a custom context and
    /// would hop through the thread pool). What .NET makes per registration: its 40 B
    /// <c>SynchronizationContextAwaitTaskContinuation</c>.</summary>
    private static void RegisterFiberContinuation(FiberInfo fiber, Task task, Action continuation)
    {
        // Normally installed already (the fork installed it before the body ran); set again in case the body's synchronous
        // part left another context installed, since the captured context is how the continuation finds its fiber. The
        // caller restores its own context afterwards.
        if (!ReferenceEquals(SynchronizationContext.Current, fiber))
        {
            SynchronizationContext.SetSynchronizationContext(fiber);
        }

        task.GetAwaiter().UnsafeOnCompleted(continuation);
    }

    /// <summary>The fiber of a continuation registered by <see cref="RegisterFiberContinuation"/>: the installed context.
    /// (Not generic: a generic method over reference types would look its type up at run time in shared code.)</summary>
    private static ForkedFiber ContinuationFiber() =>
        SynchronizationContext.Current as ForkedFiber
        ?? throw new InvalidOperationException("A fiber's end ran without its fiber installed (a bug in EioSharp's scheduling).");

    /// <summary>The end of <paramref name="fiber"/>'s suspended body, once it has completed. Always on the fiber's domain: a
    /// body that left its domain (<c>ConfigureAwait(false)</c> in fiber code) completes elsewhere, and .NET then posts the
    /// continuation through the fiber (see <see cref="s_bodyEnded"/>).</summary>
    private static void BodyCompleted(this ForkedFiber fiber)
    {
        Debug.Assert(fiber.Domain.IsCurrent, "a fiber's end runs on its domain");
        var task = fiber.Body!;
        fiber.Body = null;
        ForkedFiberEnd.Finish(fiber, task);
    }

    /// <summary>What runs when a forked fiber's body has finished: report a failure to the switch, trace, leave the switch.</summary>
    private static class ForkedFiberEnd
    {
        internal static void Finish(FiberInfo fiber, Task task)
        {
            Exception? failure = null;
            try
            {
                task.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                failure = ex;
            }

            Finish(fiber, failure);
        }

        internal static void Finish(FiberInfo fiber, Exception? failure)
        {
            var sw = fiber.Switch!;
            try
            {
                if (failure is not null)
                {
                    sw.FiberFailed(failure, fiber.Daemon);
                }
            }
            finally
            {
                if (EioTrace.On)
                {
                    EioTrace.FiberFinished(fiber, failure);
                }

                sw.RemoveLive(fiber);
                sw.FiberExited(fiber.Daemon);
            }
        }
    }

    /// <summary>Starts <paramref name="body"/> as a fiber whose result or failure goes into the returned promise (S9).</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="sw">The owning switch: it waits for the fiber and cancels it when cancelled, but does not fail when it fails.</param>
    /// <param name="body">The fiber's code.</param>
    /// <returns>A promise of the fiber's result. If the switch is finished or cancelled, the promise holds that cancellation (S6).</returns>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> belongs to another domain.</exception>
    /// <remarks>Eio: <c>Fiber.fork_promise</c>.</remarks>
    public static Promise<T> ForkPromise<T>(Switch sw, Func<Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(body);
        var (promise, resolver) = Promise.Create<T>();
        if (!sw.TryAddFiber(daemon: false))
        {
            resolver.ResolveError(sw.ForkRefusal());
            return promise;
        }

        var running = sw.Domain.RunningFrame;
        _ = RunPromiseAsync(sw, body, resolver);
        sw.Domain.RunningFrame = running;
        return promise;
    }

    private static async Task RunPromiseAsync<T>(Switch sw, Func<Task<T>> body, Resolver<T> resolver)
    {
        var frame = new FiberInfo(sw.CancelContext, sw);
        FiberFrame.Install(frame); // restored by this method's builder when it first suspends
        if (EioTrace.On)
        {
            EioTrace.FiberCreated(frame, sw.Domain.RunningFrame); // the parent: still the running frame
        }

        sw.Domain.RunningFrame = frame;
        sw.AddLive(frame.Fiber);

        Exception? failure = null;
        try
        {
            resolver.Resolve(await body());
        }
        catch (Exception ex)
        {
            failure = ex;
            resolver.ResolveError(ex);
        }
        finally
        {
            if (EioTrace.On)
            {
                EioTrace.FiberFinished(frame, failure);
            }

            sw.RemoveLive(frame.Fiber);
            sw.FiberExited(daemon: false);
        }
    }

    /// <summary>Runs <paramref name="f"/> and <paramref name="g"/> concurrently and waits for both (S10).</summary>
    /// <param name="f">Runs first, up to its first suspension.</param>
    /// <param name="g">Runs next.</param>
    /// <returns>A task that completes when both have finished.</returns>
    /// <exception cref="Exception">The combined failure (S3); the first failure cancels the other function.</exception>
    /// <remarks>Eio: <c>Fiber.both</c>. Runs in a fresh sub-switch, so failures go to the caller, not to the outer switch.</remarks>
    public static Task BothAsync(Func<Task> f, Func<Task> g) => AllAsync([f, g]);

    /// <summary>Runs <paramref name="f"/> and <paramref name="g"/> concurrently and returns both results (S10).</summary>
    /// <typeparam name="TA">The first result type.</typeparam>
    /// <typeparam name="TB">The second result type.</typeparam>
    /// <param name="f">Runs first.</param>
    /// <param name="g">Runs next.</param>
    /// <returns>Both results.</returns>
    /// <exception cref="Exception">The combined failure (S3).</exception>
    /// <remarks>Eio: <c>Fiber.pair</c>.</remarks>
    public static async Task<(TA, TB)> PairAsync<TA, TB>(Func<Task<TA>> f, Func<Task<TB>> g)
    {
        TA a = default!;
        TB b = default!;
        await Switch.RunAsync(async sw =>
        {
            Fork(sw, async () => a = await f());
            b = await g();
        });
        return (a, b);
    }

    /// <summary>Runs every function concurrently and waits for all (S10).</summary>
    /// <param name="fs">The functions, started in order.</param>
    /// <returns>A task that completes when all have finished.</returns>
    /// <exception cref="Exception">The combined failure (S3).</exception>
    /// <remarks>Eio: <c>Fiber.all</c>.</remarks>
    public static Task AllAsync(IEnumerable<Func<Task>> fs)
    {
        ArgumentNullException.ThrowIfNull(fs);
        return AllCoreAsync(fs);
    }

    private static async Task AllCoreAsync(IEnumerable<Func<Task>> fs)
    {
        // A light group rather than a sub-switch (issue 20): same rules as Switch.RunAsync for what S10 can observe (the
        // caller's cancellation is checked first; the first failure cancels the others; a function not yet started when
        // the group is cancelled is skipped, except the last, which runs as the "body"; all are joined; S3 combining).
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        var group = new ChildGroup<bool>(frame, stopAtFirst: false);
        var groupFrame = new InnerFrame(frame.Fiber, group.Context, frame.Switch);
        FiberFrame.Enter(groupFrame);
        try
        {
            Func<Task>? last = null;
            try
            {
                foreach (var f in fs)
                {
                    if (last is not null && !group.Context.IsCancelled)
                    {
                        group.Fork(last, null);
                    }

                    last = f;
                }

                if (last is not null)
                {
                    await last();
                }
            }
            catch (Exception ex)
            {
                group.Record(ex);
            }

            await group.JoinAsync();
            if (group.Errors is { } errors)
            {
                ExceptionDispatchInfo.Throw(MultipleException.Combine(errors));
            }
        }
        finally
        {
            groupFrame.Exit();
        }
    }

    /// <summary>Runs <paramref name="f"/> and <paramref name="g"/> concurrently; the first to succeed cancels the other (S11).</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="f">Runs first.</param>
    /// <param name="g">Runs next.</param>
    /// <param name="combine">Merges a late second success into the first (default: keep the first, and drop the second's
    /// value). Both may succeed: a loser may complete before its cancellation reaches it. Give one when a value must not
    /// be lost, such as an item a loser took from an <c>AsyncQueue</c> (<c>(a, b) =&gt; a ?? b</c>; docs/semantics.md S11).</param>
    /// <returns>The winner's value, as a <see cref="ValueTask{TResult}"/> to be awaited once (issue 20: a race in the steady
    /// state makes no result task; use <see cref="ValueTask{TResult}.AsTask"/> to await it more than once or combine it).</returns>
    /// <exception cref="Exception">A real failure of either function (it replaces any success).</exception>
    /// <exception cref="CancelledException">The caller was cancelled and nothing succeeded, or a function succeeded only
    /// after the caller's cancellation had ended the other (its value is dropped, as in Eio).</exception>
    /// <exception cref="ArgumentNullException"><paramref name="f"/> or <paramref name="g"/> is null (thrown synchronously).</exception>
    /// <remarks>Eio: <c>Fiber.first</c> (which returns the value itself). The awaiting code resumes on its own fiber.</remarks>
    public static ValueTask<T> FirstAsync<T>(Func<Task<T>> f, Func<Task<T>> g, Func<T, T, T>? combine = null)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(g);
        return RaceAsync<T>(null, f, g, null, combine).AsValueTask();
    }

    /// <summary>Runs <paramref name="f"/> and <paramref name="g"/> concurrently; the first to finish cancels the other (S11).</summary>
    /// <param name="f">Runs first.</param>
    /// <param name="g">Runs next.</param>
    /// <returns>A <see cref="ValueTask"/> (to be awaited once; see <see cref="FirstAsync{T}"/>) that completes when the race is over.</returns>
    /// <exception cref="Exception">A real failure of either function.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="f"/> or <paramref name="g"/> is null (thrown synchronously).</exception>
    /// <remarks>Eio: <c>Fiber.first</c>.</remarks>
    public static ValueTask FirstAsync(Func<Task> f, Func<Task> g)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(g);
        var race = RaceAsync<bool>(null, f, g, null, null);
        return race.Source is { } group ? new ValueTask(group, race.Token) : new ValueTask(race.Task!);
    }

    /// <summary>Races the functions; the first success cancels the rest (S11).</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="fs">The functions, started in order.</param>
    /// <param name="combine">Merges later successes into the first (default: keep the first).</param>
    /// <returns>The (combined) winning value, to be awaited once (see <see cref="FirstAsync{T}"/>). With no functions, waits until cancelled.</returns>
    /// <exception cref="Exception">A real failure of any function (replaces any success; several are combined).</exception>
    /// <exception cref="CancelledException">The caller was cancelled and nothing succeeded.</exception>
    /// <remarks>Eio: <c>Fiber.any</c>.</remarks>
    public static ValueTask<T> AnyAsync<T>(IReadOnlyList<Func<Task<T>>> fs, Func<T, T, T>? combine = null) => RaceAsync<T>(fs, null, null, null, combine).AsValueTask();

    /// <summary>Races the functions like <see cref="AnyAsync{T}(IReadOnlyList{Func{Task{T}}}, Func{T, T, T}?)"/> but keeps every success.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="fs">The functions.</param>
    /// <returns>Every value that was produced before the losers noticed the cancellation, in completion order.</returns>
    /// <exception cref="Exception">A real failure of any function.</exception>
    /// <remarks>Eio: <c>Fiber.n_any</c>.</remarks>
    public static async Task<List<T>> NAnyAsync<T>(IReadOnlyList<Func<Task<T>>> fs)
    {
        var all = new List<T>();
        await RaceAsync<T>(fs, null, null, all, null).AsValueTask();
        return all;
    }

    /// <returns>The (combined) winning value; with <paramref name="all"/>, every success also goes there.</returns>
    /// <remarks>The functions are <c>Func&lt;Task&gt;</c> so that the value-less <c>FirstAsync</c> races its own functions, without
    /// wrappers (a <c>Func&lt;Task&lt;T&gt;&gt;</c> is one, by variance); a success's value is read when the task is a <c>Task&lt;T&gt;</c>.
    /// Either <paramref name="fs"/>, or (<paramref name="fs"/> null) the two functions <paramref name="f"/> and
    /// <paramref name="g"/> of <c>FirstAsync</c>, without an array for them (issue 20).
    /// <para>Not an async method (issue 20): the race's group is its own continuation (<see cref="ChildGroup{T}.Race"/>), and
    /// a failure before the race starts is returned as the task's, as an async method would.</para></remarks>
    private static RaceResult<T> RaceAsync<T>(IReadOnlyList<Func<Task>>? fs, Func<Task>? f, Func<Task>? g, List<T>? all, Func<T, T, T>? combine)
    {
        FiberFrame frame;
        int count;
        try
        {
            if (fs is null && (f is null || g is null))
            {
                ArgumentNullException.ThrowIfNull(fs);
            }

            count = fs?.Count ?? 2;
            frame = FiberFrame.Require();
            if (count == 0)
            {
                return new(RaceNothingAsync<T>());
            }

            // A light race (issue 20): a cancel sub-context and a join counter, no sub-switch (like Eio's Fiber.any). The
            // caller's cancellation is checked first (as Switch.run did).
            frame.Cancel.ThrowIfCancelled();
        }
        catch (Exception ex)
        {
            return new(FailedTask<T>(ex));
        }

        return ChildGroup<T>.RentRace(frame, all, combine).Race(fs, f, g, count);
    }

    /// <summary>What a race returns: its group as the source of a value task (with the group's token), or a task (a race that
    /// ended before it started: no function, a failure before the race). Not a <see cref="ValueTask{TResult}"/> itself so that
    /// the value-less <see cref="FirstAsync(Func{Task}, Func{Task})"/> can make a <see cref="ValueTask"/> of the same source.</summary>
    private readonly struct RaceResult<T>
    {
        internal RaceResult(Task<T> task)
        {
            Task = task;
        }

        internal RaceResult(ChildGroup<T> source, short token)
        {
            Source = source;
            Token = token;
        }

        internal Task<T>? Task { get; }

        internal ChildGroup<T>? Source { get; }

        internal short Token { get; }

        internal ValueTask<T> AsValueTask() => Source is { } group ? new ValueTask<T>(group, Token) : new ValueTask<T>(Task!);
    }

    /// <summary>A race of no function: waits until cancelled (Eio: <c>Fiber.any []</c>).</summary>
    private static async Task<T> RaceNothingAsync<T>()
    {
        await AwaitCancelAsync();
        throw new InvalidOperationException("AwaitCancelAsync returned without a cancellation.");
    }

    /// <summary>A task failed with <paramref name="ex"/> as an async method's would be (cancelled for an
    /// <see cref="OperationCanceledException"/>).</summary>
    private static Task<T> FailedTask<T>(Exception ex)
    {
        var builder = AsyncTaskMethodBuilder<T>.Create();
        builder.SetException(ex);
        return builder.Task;
    }

    /// <summary>The reason every race cancels its losers with: never thrown, so one object serves every race.</summary>
    private static readonly NotFirstException s_notFirst = new();

    /// <summary>
    /// The structured part of a sub-switch that <see cref="AllAsync"/> and the races need, without the switch: a cancel
    /// sub-context, the functions forked as fibers of the enclosing switch's scope (for dumps and traces), a join count
    /// and the errors. Lives on the caller's domain; everything runs there.
    /// </summary>
    /// <remarks>A race (<see cref="Race"/>) is also its own continuation and result (issue 20: no async frame): the last
    /// function counts as pending like the forked racers, the group is the synchronization context the ends of the last
    /// function and of every suspended racer are registered under (see <see cref="Post"/>), and whichever end brings the
    /// count to 0 settles the race's task. A group is never installed as a thread's context.</remarks>
    private sealed class ChildGroup<T> : SynchronizationContext, IValueTaskSource<T>, IValueTaskSource
    {
        /// <summary>Forked racers' ends kept with a pooled group (<see cref="ReturnRace"/>); a race with more suspended racers
        /// makes the rest for itself.</summary>
        private const int KeptRacerEnds = 16;

        /// <summary>A finished race's group, kept for the next race of this thread (issue 20: a race allocates no group in the
        /// steady state). Nothing refers to a group once its race has finished (<see cref="Finish"/>): its racers and its last
        /// function have all ended and been settled, and what a race hands out (its task, cancel context and frame) are
        /// separate objects made per race.</summary>
        [ThreadStatic]
        private static ChildGroup<T>? t_spareRace;

        private FiberFrame _frame;
        private bool _stopAtFirst;
        private int _pending;
        private Waiter? _join;

        /// <summary>The end of this race's last function: the action registered on its task with this group as the captured
        /// context (see <see cref="Post"/>). Made once per race group (races' groups are pooled), so a race makes none; null in
        /// a group of <see cref="AllAsync"/>, which does not use it.</summary>
        private readonly Action? _lastEnd;

        /// <summary>The ends of the forked racers whose functions suspended, in the order they were registered in this race
        /// (<see cref="_racerEndsUsed"/> of them); made once per group and kept with it, like <see cref="_lastEnd"/>.</summary>
        private RacerEnd[]? _racerEnds;
        private int _racerEndsUsed;

        /// <summary>Runs the awaiting code's continuation posted to its context (<see cref="Complete"/>).</summary>
        private static readonly SendOrPostCallback s_continuationPosted = static s => ((ChildGroup<T>)s!).RunContinuation();

        // A race's own state (Race): the value task's version, outcome and continuation (the group is the source of the race's
        // value task, issue 20: no result task), its frame, its last function's task while it runs, whether it has ended.
        private short _version;
        private bool _completed;
        private Exception? _error;
        private T _resultValue = default!;
        private Action<object?>? _continuation;
        private object? _continuationState;
        private object? _continuationContext; // the awaiter's SynchronizationContext or TaskScheduler, when it asked for it
        private ExecutionContext? _continuationFlow;
        private InnerFrame? _raceFrame;
        private Task? _last;
        private bool _racing;
        private bool _finished;

        internal ChildGroup(FiberFrame frame, bool stopAtFirst)
        {
            _frame = frame;
            _stopAtFirst = stopAtFirst;
            _lastEnd = stopAtFirst ? LastEnded : null;
            Context = new CancelContext(frame.Fiber.Domain, frame.Cancel, isProtected: false);
        }

        /// <summary>A group for a race (any mode) in <paramref name="frame"/>: this thread's spare one if there is one, with
        /// a new cancel context.</summary>
        internal static ChildGroup<T> RentRace(FiberFrame frame, List<T>? all, Func<T, T, T>? combine)
        {
            var group = t_spareRace;
            if (group is null)
            {
                return new ChildGroup<T>(frame, stopAtFirst: true) { All = all, Combine = combine };
            }

            t_spareRace = null;
            group._frame = frame;
            group._stopAtFirst = true;
            group.Context = new CancelContext(frame.Fiber.Domain, frame.Cancel, isProtected: false);
            group.All = all;
            group.Combine = combine;
            return group;
        }

        /// <summary>Clears a finished race's group and keeps it as this thread's spare (see <see cref="t_spareRace"/>).</summary>
        private void ReturnRace()
        {
            Debug.Assert(_finished && _completed && _pending == 0 && _join is null && _last is null, "only a finished race's group is reused");
            Debug.Assert(_racerEnds is null || Array.TrueForAll(_racerEnds, e => e is null || e.Fiber is null), "every racer's end has run");
            var domainThread = _frame.Fiber.Domain.IsCurrent;
            _frame = null!;
            unchecked
            {
                _version++; // a stale ValueTask of the finished race now fails its token check instead of reading the next race
            }

            _completed = false;
            _error = null;
            _resultValue = default!;
            _continuation = null;
            _continuationState = null;
            _continuationContext = null;
            _continuationFlow = null;
            _raceFrame = null;
            _racing = false;
            _finished = false;
            Context = null!;
            Errors = null;
            Successes = 0;
            Value = default!;
            All = null;
            Combine = null;
            _racerEndsUsed = 0;
            if (_racerEnds is { Length: > KeptRacerEnds })
            {
                Array.Resize(ref _racerEnds, KeptRacerEnds);
            }

            if (domainThread)
            {
                t_spareRace = this; // not when the outcome was read off the domain (a ConfigureAwait(false) awaiter)
            }
        }

        internal CancelContext Context { get; private set; }

        internal List<Exception>? Errors { get; private set; }

        internal int Successes { get; private set; }

        internal T Value { get; private set; } = default!;

        /// <summary>NAnyAsync: receives every success (the value is then unused).</summary>
        internal List<T>? All { get; private set; }

        internal Func<T, T, T>? Combine { get; private set; }

        /// <summary>All mode (S10, as a switch): records a failure (once per exception object); the first cancels the group.</summary>
        internal void Record(Exception error)
        {
            Errors ??= new List<Exception>(1);
            foreach (var e in Errors)
            {
                if (ReferenceEquals(e, error))
                {
                    return;
                }
            }

            Errors.Add(error);
            if (Errors.Count == 1)
            {
                Context.Cancel(error);
            }
        }

        /// <summary>Any mode: runs the race of <paramref name="count"/> functions (at least 1) and returns its task. Every function
        /// but the last is forked as a racer (S12); the last runs on the caller's fiber, as a switch's body would, in the race's
        /// frame (the caller's frame is installed again before this returns). The task completes when every function has
        /// ended and been settled (S11, the join of a switch), with the (combined) value or the combined failure.</summary>
        internal RaceResult<T> Race(IReadOnlyList<Func<Task>>? fs, Func<Task>? f, Func<Task>? g, int count)
        {
            // Taken now: the group is reused once the awaiter has read the outcome (GetResult), which may be before Race returns.
            var task = new RaceResult<T>(this, _version);
            var raceFrame = new InnerFrame(_frame.Fiber, Context, _frame.Switch);
            _raceFrame = raceFrame;
            _racing = true;
            _pending++; // the last function: settled by LastEnded
            var callerContext = ExecutionContext.Capture();
            var callerFrame = SynchronizationContext.Current; // the race's frame is installed below; the caller's is put back
            Task? last = null;
            Exception? thrown = null;
            FiberFrame.Enter(raceFrame);
            try
            {
                for (int i = 0; i < count - 1; i++)
                {
                    // Like Eio, every function runs, even once an early one has won (in a cancelled context, so it stops at its
                    // first suspension), and one that succeeds without suspending is combined (S11).
                    Fork(null, fs is null ? f! : fs[i]);
                }

                try
                {
                    last = (fs is null ? g! : fs[count - 1])();
                }
                catch (Exception ex)
                {
                    thrown = ex;
                }

                if (last is { IsCompleted: false })
                {
                    // Its end: registered with this group as the captured context, so .NET posts it here (Post), which runs it
                    // inline when it completes in the caller fiber's own code, as an await would (48 B, .NET's continuation).
                    _last = last;
                    RegisterEnd(last, _lastEnd!);
                    return task;
                }
            }
            catch (Exception ex)
            {
                // Forking failed: the race ends with the failure, as its async frame did (forked racers end on their own).
                _finished = true;
                raceFrame.Exit();
                return new(FailedTask<T>(ex));
            }
            finally
            {
                SynchronizationContext.SetSynchronizationContext(callerFrame);
                if (callerContext is not null)
                {
                    ExecutionContext.Restore(callerContext);
                }
            }

            LastEnded(last, thrown);
            return task;
        }

        /// <summary>Registers <paramref name="end"/> (<see cref="_lastEnd"/> or a racer's <see cref="RacerEnd.Ended"/>) to run
        /// when <paramref name="task"/> completes, with this group as the captured synchronization context: .NET then hands
        /// the end to <see cref="Post"/> wherever the task completes (the group is never installed), and Post runs it at once
        /// or posts it to the domain. What .NET makes per registration: its 48 B
        /// <c>SynchronizationContextAwaitTaskContinuation</c>. (Not a context-free registration: .NET runs such an action
        /// inline only where no custom context is installed, and on a domain one always is: it would go through the thread
        /// pool, in a 40 B continuation of its own; h121 checked it.) The caller's context is put back.</summary>
        private void RegisterEnd(Task task, Action end)
        {
            var caller = SynchronizationContext.Current;
            SynchronizationContext.SetSynchronizationContext(this);
            try
            {
                task.GetAwaiter().UnsafeOnCompleted(end);
            }
            finally
            {
                SynchronizationContext.SetSynchronizationContext(caller);
            }
        }

        /// <summary>Where .NET sends the end of one of this race's functions (registered by <see cref="RegisterEnd"/>), with
        /// <paramref name="state"/> the end itself and <paramref name="d"/> the callback that runs it. The end of the last
        /// function runs at once when the caller's fiber is running (the task completed in the caller's own code, where an
        /// await would have run inline), a forked racer's when that racer's fiber is the installed context (where .NET runs
        /// an await's continuation inline); otherwise, and when the stack is deep (as .NET would not inline), the end is
        /// posted to the domain to run in that fiber's frame: never on a foreign thread.</summary>
        public override void Post(SendOrPostCallback d, object? state)
        {
            FiberFrame frame;
            bool here;
            if (ReferenceEquals(state, _lastEnd))
            {
                frame = _frame; // the caller's: the last function's end puts the caller's frame back (Finish)
                here = ReferenceEquals(FiberFrame.CurrentFiber, frame.Fiber);
            }
            else if (state is Action { Target: RacerEnd { Fiber: { } racer } })
            {
                frame = racer;
                here = ReferenceEquals(SynchronizationContext.Current, racer);
            }
            else
            {
                throw new InvalidOperationException("A race's group was asked to run something that is not one of its ends (a bug in EioSharp's scheduling).");
            }

            if (here && RuntimeHelpers.TryEnsureSufficientExecutionStack())
            {
                d(state);
            }
            else
            {
                frame.Fiber.Domain.Post(d, state, frame);
            }
        }

        /// <summary>Not used: a group is never installed.</summary>
        public override void Send(SendOrPostCallback d, object? state) => throw new NotSupportedException();

        /// <inheritdoc/>
        public override SynchronizationContext CreateCopy() => this;

        private void LastEnded()
        {
            Debug.Assert(_frame.Fiber.Domain.IsCurrent, "a race's end runs on its domain");
            var last = _last!;
            _last = null;
            LastEnded(last, null);
        }

        /// <summary>Settles the last function and leaves the race's count. Runs as the caller's fiber: when forked racers are
        /// still running, the caller's fiber suspends on the join as a switch's body would (a pooled waiter: traced and seen by
        /// dumps as "suspended on join"), and <see cref="Finish"/> runs when the last of them has ended.</summary>
        private void LastEnded(Task? last, Exception? thrown)
        {
            Settle(last, thrown);
            if (--_pending == 0)
            {
                Finish();
                return;
            }

            _join = Waiter.Rent(_frame.Fiber.Domain, TraceReason.Join);
            _join.VoidTask.GetAwaiter().UnsafeOnCompleted(JoinEnded); // a delegate only when the race waits for its losers
        }

        /// <summary>The caller's fiber resumes from the join (every racer has ended): consumes the waiter and ends the race.</summary>
        private void JoinEnded()
        {
            var join = _join!;
            _join = null;
            join.VoidTask.GetAwaiter().GetResult();
            Finish();
        }

        /// <summary>Every function of the race has ended: detaches the context, ends the race's frame, completes the task (S11).</summary>
        private void Finish()
        {
            if (_finished)
            {
                return;
            }

            _finished = true;
            Context.Detach();
            _raceFrame!.Exit();
            Exception? error = null;
            if (Errors is { } errors)
            {
                var combined = MultipleException.Combine(errors);
                if (combined is not CancelledException || Successes == 0)
                {
                    error = combined;
                }
            }

            if (error is null && Successes == 0)
            {
                try
                {
                    _frame.Cancel.ThrowIfCancelled();
                    error = new InvalidOperationException("No function in the race produced a result.");
                }
                catch (Exception ex)
                {
                    error = ex;
                }
            }

            Complete(error, Value);
        }

        /// <summary>Completes the race's value task: runs the awaiting code's continuation, if it is waiting, inline when its
        /// context is the one running (as .NET runs a task's continuation under a synchronization context), otherwise posted
        /// there. The group must not be touched afterwards: the continuation reads the outcome, which hands the group on for
        /// the next race (<see cref="GetResult"/>).</summary>
        private void Complete(Exception? error, T value)
        {
            _error = error;
            _resultValue = value;
            _completed = true;
            if (_continuation is null)
            {
                return; // not awaited yet: the awaiter finds it complete
            }

            switch (_continuationContext)
            {
                case SynchronizationContext sc when ReferenceEquals(sc, SynchronizationContext.Current):
                    RunContinuation();
                    break;
                case SynchronizationContext sc:
                    sc.Post(s_continuationPosted, this);
                    break;
                case TaskScheduler scheduler:
                    Task.Factory.StartNew(static s => ((ChildGroup<T>)s!).RunContinuation(), this, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler);
                    break;
            }
        }

        private void RunContinuation()
        {
            var continuation = _continuation!;
            var state = _continuationState;
            if (_continuationFlow is { } flow)
            {
                ExecutionContext.Run(flow, static s => { var (c, st) = ((Action<object?>, object?))s!; c(st); }, (continuation, state));
            }
            else
            {
                continuation(state);
            }
        }

        private void CheckToken(short token)
        {
            if (token != _version)
            {
                throw new InvalidOperationException("A race's ValueTask was awaited after its result had been read (await it once, or use AsTask).");
            }
        }

        /// <inheritdoc/>
        public ValueTaskSourceStatus GetStatus(short token)
        {
            CheckToken(token);
            if (!_completed)
            {
                return ValueTaskSourceStatus.Pending;
            }

            return _error is null ? ValueTaskSourceStatus.Succeeded
                : _error is OperationCanceledException ? ValueTaskSourceStatus.Canceled : ValueTaskSourceStatus.Faulted;
        }

        /// <inheritdoc/>
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            ArgumentNullException.ThrowIfNull(continuation);
            CheckToken(token);
            if (_continuation is not null)
            {
                throw new InvalidOperationException("A race's ValueTask was awaited twice (await it once, or use AsTask).");
            }

            object? context = null;
            if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
            {
                var sc = SynchronizationContext.Current;
                if (sc is not null && sc.GetType() != typeof(SynchronizationContext))
                {
                    context = sc;
                }
                else if (TaskScheduler.Current is { } ts && ts != TaskScheduler.Default)
                {
                    context = ts;
                }
            }

            // No context asked for (ConfigureAwait(false) in fiber code): the caller's fiber, as a pooled waiter resumes its
            // awaiting code (the race ends in a racer's code, whose fiber the continuation must not run as).
            context ??= _frame;

            _continuationFlow = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
            _continuationContext = context;
            _continuationState = state;
            _continuation = continuation;
            if (_completed)
            {
                // Completed in between (not on one domain thread; kept for safety): never inline inside OnCompleted.
                if (context is SynchronizationContext sc)
                {
                    sc.Post(s_continuationPosted, this);
                }
                else
                {
                    ThreadPool.UnsafeQueueUserWorkItem(static s => ((ChildGroup<T>)s!).RunContinuation(), this, preferLocal: true);
                }
            }
        }

        /// <summary>Reads the race's outcome (once: the group is then handed on to this thread's next race).</summary>
        public T GetResult(short token)
        {
            CheckToken(token);
            if (!_completed)
            {
                throw new InvalidOperationException("A race's ValueTask was read before it completed (await it, or use AsTask).");
            }

            var error = _error;
            var value = _resultValue;
            ReturnRace();
            if (error is not null)
            {
                ExceptionDispatchInfo.Throw(error);
            }

            return value;
        }

        /// <inheritdoc/>
        void IValueTaskSource.GetResult(short token) => GetResult(token);

        /// <summary>Starts one function as a fiber at once, up to its first suspension (S12), then the caller continues.</summary>
        internal void Fork(Func<Task>? action, Func<Task>? race)
        {
            var domain = _frame.Fiber.Domain;
            _pending++;
            var running = domain.RunningFrame;
            if (race is null)
            {
                _ = RunChildAsync(action!);
            }
            else
            {
                StartRacer(race);
            }

            domain.RunningFrame = running;
        }

        /// <summary>All mode: one function as a fiber of the group.</summary>
        private async Task RunChildAsync(Func<Task> action)
        {
            var frame = EnterChild();
            Exception? failure = null;
            try
            {
                await action();
            }
            catch (Exception ex)
            {
                failure = ex;
                Record(ex);
            }
            finally
            {
                ExitChild(frame, failure);
            }
        }

        /// <summary>Any mode: starts one racer as a fiber of the group, without an async frame of its own (issue 20): the
        /// racer's task is settled from its state when it completes, by one of the group's kept ends (<see cref="RacerEnd"/>,
        /// registered by <see cref="RegisterEnd"/>). The caller's frame is installed again before this returns.</summary>
        private void StartRacer(Func<Task> race)
        {
            var callerContext = ExecutionContext.Capture();
            var callerSync = SynchronizationContext.Current;
            try
            {
                var fiber = EnterChild();
                Task? task = null;
                Exception? thrown = null;
                try
                {
                    task = race();
                }
                catch (Exception ex)
                {
                    thrown = ex;
                }

                if (task is { IsCompleted: false })
                {
                    // Its end: one of the group's kept ends, registered with the group as the captured context (Post), like
                    // the last function's (issue 20, h121: before, the racer fiber was the captured context and a subclass
                    // that knew its group, 8 B more per racer; before that, a racer object and a delegate, 104 B).
                    var end = RentRacerEnd();
                    end.Fiber = fiber;
                    end.Task = task;
                    RegisterEnd(task, end.Ended);
                    return;
                }

                FinishRacer(fiber, task, thrown);
            }
            finally
            {
                SynchronizationContext.SetSynchronizationContext(callerSync);
                if (callerContext is not null)
                {
                    ExecutionContext.Restore(callerContext);
                }
            }
        }

        /// <summary>The next of the group's racer ends for this race: a kept one, else a new one (kept with the group when it
        /// is among the first <see cref="KeptRacerEnds"/>).</summary>
        private RacerEnd RentRacerEnd()
        {
            int i = _racerEndsUsed++;
            if (_racerEnds is null || i >= _racerEnds.Length)
            {
                Array.Resize(ref _racerEnds, Math.Max(4, (_racerEnds?.Length ?? 0) * 2));
            }

            var end = _racerEnds[i] ??= new RacerEnd(this);
            Debug.Assert(end.Fiber is null, "a racer's end is not reused before it has run");
            return end;
        }

        /// <summary>The end of one suspended forked racer: which racer and task (set for one race, cleared when it runs), and
        /// the delegate registered on the task (made once; <see cref="Post"/> tells the ends apart by it).</summary>
        /// <remarks>Reuse is safe without a version: an end is set when its racer's task is registered and runs exactly once,
        /// when that task completes; the group is reused only after the awaiting code has read the outcome
        /// (<see cref="GetResult"/>), which completes only when every function has ended (<see cref="_pending"/> is 0), so
        /// every registered end has run before its group serves another race.</remarks>
        private sealed class RacerEnd
        {
            private readonly ChildGroup<T> _group;

            internal RacerEnd(ChildGroup<T> group)
            {
                _group = group;
                Ended = End;
            }

            /// <summary>The action registered on the racer's task.</summary>
            internal Action Ended { get; }

            internal FiberInfo? Fiber;
            internal Task? Task;

            /// <summary>Settles the racer, on its domain (run by <see cref="Post"/> at once or from the run queue).</summary>
            private void End()
            {
                var fiber = Fiber!;
                var task = Task;
                Debug.Assert(fiber.Domain.IsCurrent, "a racer's end runs on its domain");
                Fiber = null; // free before the racer is settled: settling may end the race and hand the group on
                Task = null;
                _group.FinishRacer(fiber, task, null);
            }
        }

        private void FinishRacer(FiberInfo fiber, Task? task, Exception? thrown)
        {
            Exception? failure = null;
            try
            {
                failure = Settle(task, thrown);
            }
            finally
            {
                ExitChild(fiber, failure);
            }
        }

        /// <summary>Installs the child fiber (the caller restores its own: an async method's builder, or StartRacer) and registers it.</summary>
        private FiberInfo EnterChild()
        {
            var domain = _frame.Fiber.Domain;
            var owner = _frame.Switch;
            var frame = new FiberInfo(Context, owner);
            FiberFrame.Install(frame);
            if (EioTrace.On)
            {
                EioTrace.FiberCreated(frame, domain.RunningFrame); // the parent: still the running frame
            }

            domain.RunningFrame = frame;
            owner?.AddLive(frame.Fiber);
            return frame;
        }

        private void ExitChild(FiberFrame frame, Exception? failure)
        {
            if (EioTrace.On)
            {
                EioTrace.FiberFinished(frame, failure);
            }

            if (_frame.Switch is { } owner)
            {
                owner.RemoveLive(frame.Fiber);
            }
            else
            {
                frame.Fiber.Finished = true;
            }

            if (--_pending == 0)
            {
                if (_join is { } join)
                {
                    join.TryComplete(true);
                }
                else if (_racing)
                {
                    Finish();
                }
            }
        }

        /// <summary>Any mode (S11): settles one racer's outcome, keeping a success (while no error) and cancelling the rest
        /// after the first.</summary>
        /// <param name="task">The racer's task, completed; null when the function threw before returning one.</param>
        /// <param name="thrown">What the function threw synchronously, when <paramref name="task"/> is null.</param>
        /// <returns>The racer's own failure, for traces (cancellations caused by the race are not failures).</returns>
        internal Exception? Settle(Task? task, Exception? thrown)
        {
            Exception? error;
            if (task is not null && task.IsCompletedSuccessfully)
            {
                try
                {
                    Succeeded(task is Task<T> typed ? typed.Result : default!);
                    return null;
                }
                catch (Exception ex)
                {
                    error = ex; // the combine function threw
                }
            }
            else if (task is not null && task.IsCanceled && Context.IsCancelled && !_frame.Cancel.IsCancelled)
            {
                // Cancelled after the race cancelled it, the caller not being cancelled: the race's own cancellation, not
                // an error (S11). Read from the task's state, without rethrowing (issue 20). This also covers an
                // OperationCanceledException of a .NET API given Fiber.CancellationToken, which that cancellation fired.
                return null;
            }
            else
            {
                error = thrown ?? Observe(task!);
                if (error is CancelledException && !_frame.Cancel.IsCancelled)
                {
                    // Cancelled because another function won or failed: not an error (S11).
                    return null;
                }
            }

            (Errors ??= new List<Exception>()).Add(error);
            if (error is not CancelledException)
            {
                Context.Cancel(error);
            }

            return error;
        }

        private void Succeeded(T v)
        {
            if (Errors is not null)
            {
                return;
            }

            Successes++;
            if (All is not null)
            {
                All.Add(v);
            }
            else
            {
                Value = Successes == 1 ? v : (Combine is null ? Value : Combine(Value, v));
            }

            if (_stopAtFirst && Successes == 1)
            {
                Context.Cancel(s_notFirst);
            }
        }

        /// <summary>The failure of a completed, unsuccessful task, as <c>await</c> would throw it.</summary>
        private static Exception Observe(Task task)
        {
            try
            {
                task.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                return ex;
            }

            throw new InvalidOperationException("The task did not fail.");
        }

        /// <summary>Waits (not cancellable, like a switch's join) until every forked function has finished, then detaches the context.</summary>
        internal async ValueTask JoinAsync()
        {
            while (_pending > 0)
            {
                _join = Waiter.Rent(_frame.Fiber.Domain, TraceReason.Join);
                await _join.VoidTask;
                _join = null;
            }

            Context.Detach();
        }
    }

    /// <summary>Applies <paramref name="f"/> to every item concurrently (at most <paramref name="maxFibers"/> at once) and returns the results in order.</summary>
    /// <typeparam name="TIn">The item type.</typeparam>
    /// <typeparam name="TOut">The result type.</typeparam>
    /// <param name="items">The inputs.</param>
    /// <param name="f">The function.</param>
    /// <param name="maxFibers">The most items processed at once; <see cref="int.MaxValue"/> for no limit. Must be at least 1.</param>
    /// <returns>The results, in the order of <paramref name="items"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFibers"/> is less than 1.</exception>
    /// <exception cref="Exception">The combined failure; the first failure cancels the rest.</exception>
    /// <remarks>Eio: <c>Fiber.List.map ?max_fibers</c>. Items are started in order.</remarks>
    public static async Task<TOut[]> MapAsync<TIn, TOut>(IReadOnlyList<TIn> items, Func<TIn, Task<TOut>> f, int maxFibers = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(f);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFibers, 1);
        var results = new TOut[items.Count];
        int next = 0;
        int workers = Math.Min(maxFibers, items.Count);
        await Switch.RunAsync(sw =>
        {
            async Task Worker()
            {
                while (next < items.Count)
                {
                    int i = next++;
                    results[i] = await f(items[i]);
                }
            }

            for (int w = 0; w < workers; w++)
            {
                Fork(sw, Worker);
            }

            return Task.CompletedTask;
        });
        return results;
    }

    /// <summary>Runs <paramref name="f"/> on every item concurrently, at most <paramref name="maxFibers"/> at once.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The inputs.</param>
    /// <param name="f">The function.</param>
    /// <param name="maxFibers">The most items processed at once (at least 1).</param>
    /// <returns>A task that completes when all are done.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFibers"/> is less than 1.</exception>
    /// <remarks>Eio: <c>Fiber.List.iter ?max_fibers</c>.</remarks>
    public static Task IterAsync<T>(IReadOnlyList<T> items, Func<T, Task> f, int maxFibers = int.MaxValue) =>
        MapAsync<T, bool>(items, async x => { await f(x); return true; }, maxFibers);

    /// <summary>Lets other fibers run: the caller goes to the back of the run queue.</summary>
    /// <returns>An awaitable.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled (checked when it resumes, S13).</exception>
    /// <remarks>Eio: <c>Fiber.yield</c>. It always suspends, also when nothing else is queued on the domain: the code that
    /// runs next may be below the yielding method on the stack rather than in the run queue (a parent whose <c>Fork</c>
    /// is running the child up to its first suspension, S12, or a caller that has not awaited the yielding method yet),
    /// and it runs first, as after <see cref="Task.Yield"/>.</remarks>
    public static YieldAwaitable YieldAsync() => new(FiberFrame.RequireInFiber());

    /// <summary>Throws <see cref="CancelledException"/> if the current fiber is cancelled.</summary>
    /// <exception cref="CancelledException">The fiber's cancel context is cancelled.</exception>
    /// <remarks>Eio: <c>Fiber.check</c>. Use it to tell real cancellation from a stray <see cref="CancelledException"/> (S16).</remarks>
    public static void Check() => FiberFrame.Require().Cancel.ThrowIfCancelled();

    /// <summary>True if the current fiber's cancel context is cancelled.</summary>
    public static bool IsCancelled => FiberFrame.Require().Cancel.IsCancelled;

    /// <summary>A token that fires when the current fiber is cancelled, for ordinary .NET async APIs (S17a).</summary>
    public static CancellationToken CancellationToken => FiberFrame.Require().Cancel.Token;

    /// <summary>The current fiber's cancel context.</summary>
    public static CancelContext CancelContext => FiberFrame.Require().Cancel;

    /// <summary>A description of the current fiber (id and name), for traces.</summary>
    public static string Describe() => FiberFrame.Require().Fiber.ToString();

    /// <summary>Suspends until the current fiber is cancelled.</summary>
    /// <returns>An awaitable that never completes normally: awaited, it throws <see cref="CancelledException"/> once the fiber's
    /// cancel context is cancelled (at once if it already is). It converts implicitly to a <see cref="Task"/> (ending
    /// <see cref="TaskStatus.Canceled"/> with that very exception) and to a <see cref="ValueTask"/>, for code that needs one.</returns>
    /// <exception cref="InvalidOperationException">Not called from a fiber (thrown at once).</exception>
    /// <exception cref="CancelledException">When awaited, once the fiber is cancelled.</exception>
    /// <remarks>Eio: <c>Fiber.await_cancel</c>. Awaited directly, the wait is a pooled waiter of the domain (issue 20): no task
    /// and no exception stored in a task; before, a <see cref="Task"/> that the awaiting fiber paid a synchronization-context
    /// continuation and a rethrow for. Its awaiter (<see cref="CancelAwaiter"/>) throws the cancellation from the awaiting
    /// method itself (a one-frame stack trace), for the awaiting method's <c>MoveNextAction</c> delegate.</remarks>
    public static CancelAwaitable AwaitCancelAsync() => new(FiberFrame.Require());

    /// <summary>The awaitable returned by <see cref="AwaitCancelAsync"/>: waits on the fiber frame it was made in.</summary>
    /// <remarks>Each <see cref="GetAwaiter"/> (each <c>await</c>) is a new wait, so it may be awaited more than once, like
    /// <see cref="YieldAwaitable"/>; the conversions to <see cref="Task"/> and <see cref="ValueTask"/> also start a wait each.</remarks>
    public readonly struct CancelAwaitable
    {
        private readonly FiberFrame _frame;

        internal CancelAwaitable(FiberFrame frame) => _frame = frame;

        /// <summary>An awaiter over a pooled waiter registered with the frame's cancel context (a new wait each call).</summary>
        /// <returns>The awaiter; its <see cref="CancelAwaiter.GetResult"/> throws the <see cref="CancelledException"/> of the
        /// cancellation.</returns>
        /// <exception cref="InvalidOperationException">The awaitable was made by <c>default</c>, not by <see cref="AwaitCancelAsync"/>.</exception>
        public CancelAwaiter GetAwaiter()
        {
            var w = Rent();
            return new CancelAwaiter(w, w.Version);
        }

        /// <summary>The wait as a task: it ends <see cref="TaskStatus.Canceled"/> and rethrows the very
        /// <see cref="CancelledException"/> its context delivered (one task, completed without a throw).</summary>
        /// <returns>The task.</returns>
        public Task AsTask() => CancelAwait.Start(Rent());

        /// <summary>The wait as a task (<see cref="AsTask"/>).</summary>
        /// <param name="awaitable">The awaitable.</param>
        public static implicit operator Task(CancelAwaitable awaitable) => awaitable.AsTask();

        /// <summary>The wait as a value task over the pooled waiter (await it once).</summary>
        /// <param name="awaitable">The awaitable.</param>
        public static implicit operator ValueTask(CancelAwaitable awaitable) => awaitable.Wait();

        private ValueTask Wait()
        {
            var w = Rent();
            return new ValueTask(w, w.Version);
        }

        private Waiter Rent()
        {
            var frame = _frame ?? throw new InvalidOperationException("This CancelAwaitable was not made by Fiber.AwaitCancelAsync.");
            var w = Waiter.Rent(frame.Fiber.Domain, TraceReason.AwaitCancel);

            // Only cancellation completes this waiter (it is in no wait structure), so the wait can only end cancelled.
            w.Attach(frame.Cancel);
            return w;
        }
    }

    /// <summary>The awaiter of <see cref="CancelAwaitable"/>: one wait on a pooled waiter of the domain, registered with the
    /// awaiting code's cancel context; it completes only by that context's cancellation.</summary>
    /// <remarks>Not a <see cref="ValueTaskAwaiter"/> (issue 20, session 19): that awaiter reads the outcome through
    /// <c>IValueTaskSource.GetResult</c>, an interface call the JIT does not inline, so the cancellation was thrown one frame
    /// below the awaiting method, and .NET grows a thrown exception's stack-trace array frame by frame (72 B for one frame,
    /// then 104 B more for two). This awaiter's <see cref="GetResult"/> is inlined, so the cancellation is thrown from the
    /// awaiting method itself: a one-frame trace. The price is the awaiting method's <c>MoveNextAction</c> delegate, which .NET
    /// makes (once per async call) for an awaiter it does not know: 64 B, against the 104 B saved.</remarks>
    public readonly struct CancelAwaiter : ICriticalNotifyCompletion
    {
        private static readonly Action<object?> s_invoke = static s => ((Action)s!)();

        private static readonly Action<object?> s_runInContext = static s =>
        {
            var (continuation, flow) = ((Action, ExecutionContext))s!;
            ExecutionContext.Run(flow, static c => ((Action)c!)(), continuation);
        };

        private readonly Waiter _waiter;
        private readonly short _token;

        internal CancelAwaiter(Waiter waiter, short token)
        {
            _waiter = waiter;
            _token = token;
        }

        /// <summary>The wait's waiter; a <c>default</c> awaiter (not from <see cref="CancelAwaitable.GetAwaiter"/>) fails clearly.</summary>
        private Waiter Source
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => _waiter ?? ThrowNotMade();
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static Waiter ThrowNotMade() => throw new InvalidOperationException("This CancelAwaiter was not made by Fiber.AwaitCancelAsync().GetAwaiter().");

        /// <summary>True once the wait has ended (at once when the context was already cancelled).</summary>
        /// <exception cref="InvalidOperationException">The wait was already consumed (this awaiter was awaited twice), or the
        /// awaiter is <c>default</c>.</exception>
        public bool IsCompleted => Source.GetStatus(_token) != ValueTaskSourceStatus.Pending;

        /// <summary>Runs <paramref name="continuation"/> in the awaiting code's frame, on its domain, when the wait ends, in
        /// the execution context captured here (its async locals).</summary>
        /// <param name="continuation">The continuation.</param>
        /// <exception cref="InvalidOperationException">The wait is already awaited, or was consumed.</exception>
        public void OnCompleted(Action continuation)
        {
            ArgumentNullException.ThrowIfNull(continuation);
            if (ExecutionContext.Capture() is { } flow)
            {
                Source.OnCompleted(s_runInContext, (continuation, flow), _token, ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
            }
            else
            {
                UnsafeOnCompleted(continuation);
            }
        }

        /// <summary>As <see cref="OnCompleted"/>, without asking for the execution context to flow (what an async method's
        /// builder calls: the method's box restores its own).</summary>
        /// <param name="continuation">The continuation.</param>
        /// <exception cref="InvalidOperationException">The wait is already awaited, or was consumed.</exception>
        public void UnsafeOnCompleted(Action continuation)
        {
            ArgumentNullException.ThrowIfNull(continuation);
            Source.OnCompleted(s_invoke, continuation, _token, ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
        }

        /// <summary>Ends the wait: throws the <see cref="CancelledException"/> the context delivered (a fresh one, thrown from
        /// here, which is the awaiting method once inlined); the waiter goes back to its pool.</summary>
        /// <exception cref="CancelledException">Always, once the wait has ended: the fiber's context was cancelled.</exception>
        /// <exception cref="InvalidOperationException">The wait has not ended, or was already consumed (awaited twice).</exception>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void GetResult()
        {
            var error = Source.Consume(_token, out _);
            if (error is CancelledException { StackTrace: null } cancelled)
            {
                throw cancelled;
            }

            if (error is not null)
            {
                // Not reached today (only the context's fresh cancellation ends this wait); as Waiter's GetResult does, a
                // failure that was already thrown keeps its trace.
                ExceptionDispatchInfo.Throw(error);
            }
        }
    }

    /// <summary>The task of <see cref="AwaitCancelAsync"/>: completed from the waiter's continuation with the waiter's
    /// <see cref="CancelledException"/>, handed over without a throw (issue 20: <c>ValueTask.AsTask</c> rethrew and caught it
    /// once more than the awaiting fiber needs). As an async method would, the task ends <see cref="TaskStatus.Canceled"/>
    /// and rethrows that very exception when awaited.</summary>
    private sealed class CancelAwait
    {
        private static readonly Action<object?> s_woken = static s => ((CancelAwait)s!).Woken();

        private readonly Waiter _waiter;
        private readonly short _token;
        private AsyncTaskMethodBuilder _builder; // a mutable struct: used only through this field

        private CancelAwait(Waiter waiter)
        {
            _waiter = waiter;
            _token = waiter.Version;
            _builder = AsyncTaskMethodBuilder.Create();
        }

        internal static Task Start(Waiter w)
        {
            var c = new CancelAwait(w);
            var task = c._builder.Task;
            ((IValueTaskSource)w).OnCompleted(s_woken, c, c._token, ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
            return task;
        }

        private void Woken()
        {
            var error = _waiter.Consume(_token, out _);
            if (error is null)
            {
                _builder.SetResult(); // unreachable today: nothing completes the waiter but its cancel context
            }
            else
            {
                _builder.SetException(error); // an OperationCanceledException: the task ends Canceled, keeping the object
            }
        }
    }

    private sealed class NotFirstException() : Exception("Another fiber finished first.");

    /// <summary>The awaitable returned by <see cref="YieldAsync"/>.</summary>
    /// <remarks>Its awaiter is a <see cref="ValueTaskAwaiter"/> over the domain's yield source (issue 20; awaited off the
    /// domain, over the yielding code's fiber frame): an async method awaiting it hands its state machine box to the source
    /// directly, so a yield allocates nothing, not even the method's <c>MoveNextAction</c> delegate that a custom awaiter
    /// costs on the first suspension of every async method. Each <see cref="GetAwaiter"/> is a new yield, so the awaitable
    /// may be awaited more than once, as before; await the awaiter it returns at once (an awaiter registered after a
    /// later yield of the domain was made is queued with the frame installed when it registers).</remarks>
    public readonly struct YieldAwaitable
    {
        private readonly FiberFrame _frame;

        internal YieldAwaitable(FiberFrame frame) => _frame = frame;

        /// <summary>An awaiter that queues the awaiting code at the back of its domain's run queue and, when it runs again,
        /// checks cancellation.</summary>
        /// <returns>The awaiter; its <c>IsCompleted</c> is always false (yielding always suspends), its <c>GetResult</c>
        /// throws <see cref="CancelledException"/> if the fiber was cancelled meanwhile (S13).</returns>
        public ValueTaskAwaiter GetAwaiter()
        {
            var frame = _frame;
            if (frame is not null)
            {
                // On the fiber's own domain (the usual case), the domain's yield source (issue 20, h143: a source with a
                // short chain of base types for ValueTask's casts); elsewhere (the awaitable was carried off the domain),
                // the frame itself, which posts the continuation back to the domain.
                var domain = frame.Cancel.Domain;
                if (domain.IsCurrentThread)
                {
                    var source = domain.Yields;
                    return new ValueTask(source, source.Arm(frame)).GetAwaiter();
                }
            }

            return OffDomain(frame);
        }

        /// <summary>The awaiter of a yield awaited off its fiber's domain: over the frame, which posts the continuation back
        /// to the domain (a default awaitable: as <c>new ValueTask(null, 0)</c>, as before).</summary>
        /// <remarks>Out of line (h167): the call on a <see cref="ValueTask"/> made the fast path's temporary an
        /// address-taken local of the awaiting method, cleared and copied through the stack on every yield.</remarks>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static ValueTaskAwaiter OffDomain(FiberFrame? frame) => new ValueTask(frame!, 0).GetAwaiter();
    }
}
