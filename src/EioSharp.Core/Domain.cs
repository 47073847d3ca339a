using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>A domain: one OS thread running one scheduler (a FIFO run queue, a timer heap and the backend's event wait).</summary>
/// <remarks>
/// Eio: <c>Domain</c> plus the scheduler of <c>Eio_main</c>.
/// <para><b>Scheduling</b>: every fiber belongs to exactly one domain and all of its continuations run on
/// that domain's thread, in FIFO order, so fibers of one domain never run in parallel. The domain installs a
/// <see cref="SynchronizationContext"/> whose <c>Post</c> enqueues onto its run queue, so awaiting an ordinary
/// <see cref="Task"/> inside a fiber also resumes on the domain (do not use <c>ConfigureAwait(false)</c> in fiber code).</para>
/// <para><b>Thread safety</b>: <see cref="Id"/>, <see cref="Name"/> and <see cref="Current"/> may be read from any thread.</para>
/// </remarks>
public sealed class Domain
{
    private static int s_nextId;

    [ThreadStatic]
    private static Domain? t_current;

    /// <summary>A finished domain's emptied run queue, kept for the next domain that runs on this thread (issue 20: a fresh
    /// queue regrows its array, e.g. 10,000 forks cost 84 B each in growth). Only a queue of at most
    /// <see cref="SpareQueueMaxCapacity"/> items is kept, so a thread holds at most that much (24 B per item).</summary>
    [ThreadStatic]
    private static RunQueue? t_spareQueue;

    private const int SpareQueueMaxCapacity = 1 << 16;

    private RunQueue _local = new(); // only this domain's thread, only while its loop runs (RunLoop swaps it)
    private readonly ConcurrentQueue<WorkItem> _remote = new();

    /// <summary>The words other threads write on every post (<see cref="InboxLine.Posted"/>, <see cref="InboxLine.Sleeping"/>),
    /// on a cache line of their own (issue 20, h192): see <see cref="InboxLine"/>.</summary>
    private InboxLine _inbox;
    private readonly IDomainPoller _poller;
    private readonly PriorityQueue<TimerWaiter, (long Deadline, long Seq)> _timers = new();
    private readonly ITimeSource _time;

    /// <summary>Whether <see cref="_time"/> is <see cref="StopwatchTimeSource"/>: the loop's own <see cref="Stopwatch"/>
    /// readings (on waking, on going idle) then give the timers' time too, without a clock read of their own (h169).</summary>
    private readonly bool _realTime;
    private readonly DomainSynchronizationContext _syncContext;
    private long _timerSeq;
    private int _deadTimers; // cancelled timers still in _timers (approximate: pruning may also remove them)
    private long _wakeUps;
    private bool _postedToOther; // this domain posted to another domain since it last slept (written by its own thread)
    private bool _wokeOther; // one of those posts found its domain asleep and woke it (written by this domain's own thread)
    private int _externalOperations;
    private Thread? _thread;
    private Exception? _crash;

    internal Domain(string? name, ITimeSource time, bool isMain = false, Func<IDomainPoller>? pollerFactory = null, IDomainPoller? poller = null)
    {
        PollerFactory = pollerFactory;
        _poller = poller ?? pollerFactory?.Invoke() ?? new EventPoller();
        _poller.Attach(this);
        _inbox.Queue = _remote;

        Id = Interlocked.Increment(ref s_nextId) - 1;
        Name = name ?? (isMain ? "main" : $"domain-{Id}");
        _time = time;
        _realTime = time is StopwatchTimeSource;
        IsMain = isMain;
        _syncContext = new DomainSynchronizationContext(this);
        TaskScheduler = new DomainTaskScheduler(this);
        Yields = new YieldSource(this);
        EioEventSource.EnsureCreated(); // a listener (dotnet-trace) can see and enable the source (issue 17, h122)
    }

    /// <summary>A process-unique number for this domain (the first domain created is 0).</summary>
    public int Id { get; }

    /// <summary>The domain's name, used in <see cref="TraceLog"/> prefixes and watchdog reports.</summary>
    public string Name { get; }

    /// <summary>The domain whose thread is calling, or <see langword="null"/> on a thread that is not a domain.</summary>
    public static Domain? Current => t_current;

    /// <summary>A <see cref="System.Threading.Tasks.TaskScheduler"/> that runs tasks on this domain's run queue.</summary>
    public TaskScheduler TaskScheduler { get; }

    /// <summary>The number of work items waiting in the run queue (approximate when read from another thread).</summary>
    public int RunQueueLength => _local.Count + _remote.Count + (HasMail ? 1 : 0);

    /// <summary>Total time this domain has spent awake (running work items and scheduling), not waiting for events.</summary>
    /// <remarks>Accumulated each time the domain goes idle, so it lags by the current busy stretch.</remarks>
    public TimeSpan BusyTime => Stopwatch.GetElapsedTime(0, Volatile.Read(ref _busyTicks));

    /// <summary>The number of work items run since the domain started.</summary>
    public long WorkItemsRun => Volatile.Read(ref _itemsRun);

    /// <summary>Makes the poller of domains started from this one (null: the default event poller).</summary>
    internal Func<IDomainPoller>? PollerFactory { get; }

    /// <summary>This domain's poller (the epoll backend's transports register fds in it).</summary>
    internal IDomainPoller Poller => _poller;

    /// <summary>True for the domain made by <c>EioMain.Run</c> (its trace lines carry no prefix).</summary>
    internal bool IsMain { get; }

    internal ITimeSource Time => _time;

    internal SynchronizationContext SyncContext => _syncContext;

    /// <summary>The source of the yields awaited on this domain's thread (<c>Fiber.YieldAsync</c>; issue 20, h143).</summary>
    internal YieldSource Yields { get; }

    internal bool IsCurrent => ReferenceEquals(t_current, this);

    /// <summary>True when the caller's stack address lies in the window below the domain loop's frame (see
    /// <see cref="YieldSource.LoopStackWindow"/>): it runs on this domain's thread, inside its loop (h174's test, for the
    /// waiter's wake-up and registration: issue 20, h186). One subtraction and one compare instead of a thread-static read
    /// (on Linux a <c>__tls_get_addr</c> call); a false answer is not conclusive (a deep stack, the loop not running, another
    /// thread) and the caller then takes the thread-static test. Like <see cref="IsCurrentThread"/> it is also true on
    /// that thread inside another domain run nested in one of this domain's work items, where this domain is blocked in
    /// that item: the one thread that touches this domain's run queue and waiters queues the item, which runs when the
    /// work item has returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal unsafe bool OnLoopStack()
    {
        byte probe;
        return _inbox.LoopStack - (nuint)(&probe) < YieldSource.LoopStackWindow;
    }

    /// <summary>The domain whose loop started last (any thread; cleared when that loop ends): a guess at the calling thread's
    /// domain that <see cref="OnLoopStack"/> confirms without a thread-static read (<c>FiberFrame.RequireInline</c>: issue
    /// 20, h186). Stack windows of different threads never overlap, so a confirmed guess is the calling thread's domain
    /// whatever other threads do; a wrong or stale one only sends the caller to the thread-static test.</summary>
    internal static Domain? LastLoop;

    /// <summary>The synchronization context installed on this domain's thread, read through its thread's field when the
    /// caller has proved it runs there (<see cref="OnLoopStack"/>): no thread-static read.</summary>
    internal SynchronizationContext? LoopThreadContext =>
        s_threadContextField ? ThreadContext(_thread!) : SynchronizationContext.Current;

    /// <summary>Whether the calling thread is the one running this domain's loop (as <see cref="IsCurrent"/> but through
    /// <see cref="Thread.CurrentThread"/>: in fiber code that has just read <see cref="SynchronizationContext.Current"/>, the
    /// JIT reads the thread once for both; h162). Also true on that thread inside another domain run nested in one of this
    /// domain's work items, where <see cref="IsCurrent"/> is false: a caller that then touches the run queue checks
    /// <see cref="IsCurrent"/> there (<see cref="Enqueue(Action{object?}, object?, FiberFrame?)"/> does).</summary>
    internal bool IsCurrentThread => ReferenceEquals(_thread, Thread.CurrentThread);

    /// <summary>Whether a work item is queued (locally or posted from another thread): a poller's wait that reaped only
    /// its own bookkeeping completions can tell from this that it has nothing to return for (domain thread only).</summary>
    internal bool HasQueuedWork => _local.Count > 0 || HasMail || !_remote.IsEmpty;

    /// <summary>When the currently running work item started (Stopwatch ticks), or 0 when idle; read by the watchdog.</summary>
    internal long CurrentItem => Volatile.Read(ref _currentItem);

    /// <summary>The fiber frame of the work item that is running (best effort, for the watchdog).</summary>
    /// <remarks>
    /// Written only by the domain's thread, read racily by the watchdog. Set from <see cref="WorkItem.Frame"/> when an item
    /// starts (free: the frame travels with the item; stored only when it is another frame, h167), by
    /// <see cref="Fiber.Fork(Switch, Func{Task})"/> while a child runs up to its first suspension, and by the main fiber. Waiters record their fiber's frame only while a watchdog runs
    /// (<see cref="WatchdogsRunning"/>), so the hot path pays one static read when none does. Between rounds that follow
    /// each other at once it keeps the last item's frame (h167: a fiber resuming in the next round stores nothing); the
    /// loop clears it before it does anything else (timers, I/O, sleeping), so a wake-up from there is attributed to no
    /// fiber, and a reader on another thread tells a running item from <see cref="CurrentItem"/> (0 between items).
    /// </remarks>
    internal volatile FiberFrame? RunningFrame;

    /// <summary>The number of running watchdogs; while non-zero, suspensions record the fiber frame for <see cref="RunningFrame"/>.</summary>
    internal static int WatchdogsRunning;

    /// <summary>True while suspensions are recorded for dumps: a watchdog or <c>EioDiagnostics.TrackFibers</c> runs
    /// (<see cref="WatchdogsRunning"/>), or tracing is on (its suspension hook records them).</summary>
    internal static bool FibersTracked => Volatile.Read(ref WatchdogsRunning) != 0 || EioTrace.IsEnabled;

    /// <summary>This domain's trace ring (written only by the domain's thread; see <see cref="EioTrace"/>).</summary>
    internal TraceRing? TraceRing;

    /// <summary>The trace generation (session) that began while this domain was alive, and when (a raw trace clock
    /// reading): the domain's first ring of that generation opens the run in progress then, if any (see
    /// <c>EioTrace.NewRing</c>). Written and read under the trace's lock.</summary>
    internal int TraceOpenGeneration;

    /// <inheritdoc cref="TraceOpenGeneration"/>
    internal long TraceOpenSince;

    /// <summary>The live switches made on this domain (a list linked through <see cref="Switch"/>, for dumps).</summary>
    internal Switch? LiveSwitches;

    /// <summary>The domain's main fiber (for dumps).</summary>
    internal FiberInfo? MainFiber;

    private long _currentItem; // sequence number of the work item running now, 0 when none (read by the watchdog)
    private long _busyTicks;
    private long _itemsRun;

    /// <summary>Throws unless called on this domain's thread.</summary>
    internal void CheckCurrent(string what)
    {
        if (!ReferenceEquals(t_current, this))
        {
            throw new InvalidOperationException(
                $"{what} belongs to domain {Id} ({Name}) and cannot be used from " +
                (t_current is null ? "a thread that is not a domain" : $"domain {t_current.Id} ({t_current.Name})") + ".");
        }
    }

    /// <summary>Enqueues a continuation at the back of the run queue; safe from any thread.</summary>
    internal void Enqueue(Action<object?> callback, object? state) => Enqueue(callback, state, null);

    /// <summary>Enqueues a continuation of the fiber running in <paramref name="frame"/> (if known, for the watchdog); safe from any thread.</summary>
    internal void Enqueue(Action<object?> callback, object? state, FiberFrame? frame) => EnqueueItem(callback, state, frame);

    /// <summary>As <see cref="Enqueue(Action{object?}, object?, FiberFrame?)"/> from this domain's own thread (the caller has
    /// checked: a waiter's wake-up by a fiber of its own domain, h163).</summary>
    internal void EnqueueHere(Action<object?> callback, object? state, FiberFrame? frame)
    {
        Debug.Assert(ReferenceEquals(t_current, this) || OnLoopStack(), "EnqueueHere off the domain's thread");
        _local.Enqueue(callback, state, frame);
    }

    /// <summary>Queues the wake-up of <paramref name="waiter"/>, whose continuation, state and frame stay in it until the item
    /// is dequeued (the dequeue reads them from it): one reference stored into the run queue, not three (issue 20, h186).
    /// From this domain's own thread only (the caller has checked, as for <see cref="EnqueueHere"/>).</summary>
    internal void EnqueueWaiterHere(SuspensionNode waiter)
    {
        Debug.Assert(ReferenceEquals(t_current, this) || OnLoopStack(), "EnqueueWaiterHere off the domain's thread");
        _local.EnqueueWaiter(waiter);
    }

    /// <summary>Runs <paramref name="continuation"/> now, inside the work item that is running (one posted from another thread
    /// with no frame), as code of <paramref name="frame"/>'s fiber: the frame becomes the running frame and the thread's
    /// context, as if it had been the item's own (<see cref="RunItems"/> compares the next item's with the thread's field,
    /// so an item may change them). For a waiter completed by an item that its waker posted without reading the waiter
    /// (§209, issue 20, h212): the continuation runs where the waker's post is in the queue, as its posted continuation
    /// used to. Domain thread only.</summary>
    internal void RunPostedContinuation(Action<object?> continuation, object? state, FiberFrame? frame)
    {
        Debug.Assert(ReferenceEquals(t_current, this), "RunPostedContinuation off the domain's thread");
        if (!ReferenceEquals(RunningFrame, frame))
        {
            RunningFrame = frame;
        }

        var context = frame ?? (SynchronizationContext)_syncContext;
        if (s_threadContextField)
        {
            ref var installed = ref ThreadContext(_thread!);
            if (!ReferenceEquals(installed, context))
            {
                installed = context;
            }
        }
        else
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }

        continuation(state);
    }

    /// <summary>As <see cref="Enqueue(Action{object?}, object?, FiberFrame?)"/> from this domain's thread while its loop runs,
    /// which the caller has proved by a stack address (<see cref="YieldSource"/>'s registration, h174): no thread-static
    /// test. Also right on that thread inside another domain run nested in one of this domain's work items: the one thread
    /// that touches this run queue queues the item, which runs when the work item has returned.</summary>
    internal void EnqueueOnLoopThread(Action<object?> callback, object? state, FiberFrame? frame) => _local.Enqueue(callback, state, frame);

    /// <summary>Enqueues an item at the back of the run queue; from another thread, wakes the domain if this post is the
    /// first since it armed its sleep (one wake-up per batch).</summary>
    /// <remarks>The item's three references are passed as they are (not as a <see cref="WorkItem"/>): the local queue stores
    /// them field by field (see <see cref="RunQueue.Enqueue"/>).</remarks>
    private void EnqueueItem(Delegate callback, object? state, FiberFrame? frame)
    {
        if (ReferenceEquals(t_current, this))
        {
            _local.Enqueue(callback, state, frame);
        }
        else
        {
            ref var inbox = ref _inbox;
            if (Volatile.Read(ref Unsafe.As<int, long>(ref inbox.Posted)) == 0
                && Interlocked.CompareExchange(ref inbox.Mail, MailWriting, MailEmpty) == MailEmpty)
            {
                // The mailbox (h192): the item travels in the inbox line itself. Only while the queue's flag is clear and
                // the mailbox empty (one read of the line's word that holds both, h206: not the queue's own lines, which a
                // busy domain's dequeues keep moving), so that every post that finds the mailbox taken, queued behind it,
                // is drained after it (DrainRemote). A clear flag with an item in the queue is another poster's enqueue
                // still before its flag (no order between two posters to keep), or the round that cleared it holding the
                // mailbox while it drains (MailDraining: the CAS fails); a poster's own earlier queued item has its flag
                // set before this post reads it.
                inbox.MailCallback = callback;
                inbox.MailState = state;
                inbox.MailFrame = frame;
                Volatile.Write(ref inbox.Mail, MailFull);
            }
            else
            {
                inbox.Queue.Enqueue(new WorkItem(callback, state, frame));
                Volatile.Write(ref inbox.Posted, 1); // after the enqueue: a round that sees it (and clears it) drains this item
            }

            AfterPost(ref inbox);
        }
    }

    /// <summary>The value bits of the mailbox completion being run by the drain (<see cref="TryPostCompletion"/>; domain
    /// thread only, read by the completion).</summary>
    internal long DrainedValue;

    /// <summary>Posts, from another thread, a completion that carries an 8-byte value, through the mailbox only: the drain
    /// runs <paramref name="completion"/> itself with <paramref name="target"/>, <see cref="DrainedValue"/> holding
    /// <paramref name="value"/>, instead of queuing it (§209: the woken domain reads the value from its inbox line, not from
    /// the line of the object it came from). The completion must not run user code: it completes a waiter and queues its
    /// continuation. False when the mailbox is not free (the caller posts an ordinary item instead).</summary>
    internal bool TryPostCompletion(Action<object?> completion, object target, long value)
    {
        ref var inbox = ref _inbox;
        if (Volatile.Read(ref Unsafe.As<int, long>(ref inbox.Posted)) != 0
            || Interlocked.CompareExchange(ref inbox.Mail, MailWriting, MailEmpty) != MailEmpty)
        {
            return false;
        }

        inbox.MailCallback = completion;
        inbox.MailState = target;
        inbox.MailValue = value;
        inbox.MailInDrain = 1;
        Volatile.Write(ref inbox.Mail, MailFull);
        AfterPost(ref inbox);
        return true;
    }

    /// <summary>What a post from another thread does after its item is in (<see cref="EnqueueItem"/>): the sender's own
    /// marks, and the wake-up of a sleeping domain.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AfterPost(ref InboxLine inbox)
    {
        var sender = t_current;
        if (sender is not null)
        {
            // Written by the sender's own thread: it now expects an answer soon (see WaitForWork).
            sender._postedToOther = true;
        }

        // Batched wake-up: only the post that finds the domain asleep wakes it; the posts after it (until the domain
        // sleeps again) only enqueue, and the domain drains its whole inbox in its next round.
        if (Volatile.Read(ref inbox.Sleeping) == 1 && Interlocked.Exchange(ref inbox.Sleeping, 0) == 1)
        {
            Interlocked.Increment(ref _wakeUps);
            _poller.Wake();
            if (sender is not null)
            {
                // Its answer cannot come before this domain's thread has woken: the sender's next spin waits that long.
                sender._wokeOther = true;
            }
        }
    }

    /// <summary>Enqueues the yield carried by <paramref name="source"/> (its continuation, state and frame are in it; domain
    /// thread only): the run queue's slot holds the one reference (h162).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void EnqueueCarried(YieldSource source) => _local.EnqueueCarried(source);

    /// <summary>As <see cref="Enqueue(Action{object?}, object?, FiberFrame?)"/> for a woken fiber's continuation, recording
    /// the wake-up in the trace (called only while tracing is on, instead of <c>EioTrace.Woken</c> then the enqueue).</summary>
    /// <remarks>The thread-static current domain is read once for both (h90): on this domain's own thread the trace hook
    /// is told so and reads no thread-static of its own. The wake-up is recorded before the continuation is queued (from
    /// another thread, the woken fiber may run at once).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)] // only while tracing: the off path's callers stay as they were
    internal void EnqueueWoken(Action<object?> callback, object? state, FiberFrame? frame)
    {
        if (ReferenceEquals(t_current, this))
        {
            if (frame is not null)
            {
                EioTrace.WokenHere(this, frame);
            }

            _local.Enqueue(callback, state, frame);
            return;
        }

        EioTrace.Woken(frame);
        EnqueueItem(callback, state, frame);
    }

    /// <summary>The number of times a post from another thread woke this domain from its wait (for tests and diagnostics).</summary>
    internal long WakeUps => Volatile.Read(ref _wakeUps);

    private static readonly Action<object?> s_runAction = static s => ((Action)s!)();

    internal void Enqueue(Action continuation) => Enqueue(s_runAction, continuation, null);

    internal void Enqueue(Action continuation, FiberFrame? frame) => Enqueue(s_runAction, continuation, frame);

    /// <summary>Marks an operation outside the domain (another thread) that will post back; the mock backend does not report a deadlock while one is pending.</summary>
    /// <remarks>Read by a backend's <see cref="IDomainPoller.TryIdle"/> through <see cref="HasExternalOperations"/>.</remarks>
    internal void BeginExternal() => Interlocked.Increment(ref _externalOperations);

    internal void EndExternal() => Interlocked.Decrement(ref _externalOperations);

    /// <summary>True while an operation marked by <see cref="BeginExternal"/> has not ended (it will post back).</summary>
    internal bool HasExternalOperations => Volatile.Read(ref _externalOperations) != 0;

    /// <summary>True when work posted from other threads waits in the run queue.</summary>
    internal bool HasRemoteWork => HasMail || !_remote.IsEmpty;

    internal long Now => _time.Now;

    /// <summary>Entries in the timer heap, including cancelled ones not yet removed (for tests and diagnostics).</summary>
    internal int TimerCount => _timers.Count;

    internal void AddTimer(TimerWaiter waiter)
    {
        _timers.Enqueue(waiter, (waiter.Deadline, _timerSeq++));
    }

    /// <summary>The minimum number of cancelled timers before the heap is rebuilt without them.</summary>
    /// <remarks>Cancelled timers are normally dropped when they reach the top of the heap; a long deadline (a 1-hour
    /// timeout that is cancelled each time the operation succeeds) never gets there, so they would pile up.</remarks>
    private const int TimerCompactionThreshold = 1024;

    /// <summary>Called on this domain when a sleeping fiber's timer is cancelled; rebuilds the heap once dead entries are more than half of it.</summary>
    internal void TimerCancelled()
    {
        _deadTimers++;
        if (_deadTimers > TimerCompactionThreshold && _deadTimers > _timers.Count / 2)
        {
            CompactTimers();
        }
    }

    private void CompactTimers()
    {
        var live = new List<(TimerWaiter, (long, long))>(Math.Max(0, _timers.Count - _deadTimers));
        foreach (var (w, key) in _timers.UnorderedItems)
        {
            if (!w.IsDone)
            {
                live.Add((w, key));
            }
        }

        _timers.Clear();
        _timers.EnqueueRange(live);
        _deadTimers = 0;
    }

    private void DroppedDeadTimer()
    {
        if (_deadTimers > 0)
        {
            _deadTimers--;
        }
    }

    /// <summary>Runs the scheduler loop on the calling thread until the task <paramref name="start"/> returned has completed
    /// (checked after each round).</summary>
    internal void RunLoop(Func<Task> start)
    {
        var previousDomain = t_current;
        var previousContext = SynchronizationContext.Current;
        if (t_spareQueue is { } spare && _local.Count == 0)
        {
            // Nothing can be in the fresh queue yet: only this thread enqueues locally, and only from now on.
            t_spareQueue = null;
            _local = spare;
        }

        t_current = this;
        _thread = Thread.CurrentThread;
        var mark = LoopStackMark();
        Yields.EnterLoop(mark); // the yield's registration tells this thread by a stack address (h174)
        _inbox.LoopStack = mark; // and so do a waiter's wake-up and registration (h186)
        LastLoop = this;
        SynchronizationContext.SetSynchronizationContext(_syncContext);
        DomainRegistry.Register(this);
        try
        {
            // The start (the main fiber up to its first suspension) is a work item like any other: timed, so the
            // watchdog sees a stall in it and busy time counts it.
            //
            // The loop's clock reads (issue 14, h169): one on waking (awakeSince, which also serves the first round's due
            // timers) and one on going idle (idleAt: the busy time, the due timers and the wait's timeout), two per sleep
            // instead of five; a round that follows a busy round at once reads the clock only if a timer is armed. A
            // reading taken a little before it is used only makes a timer fire or a wait end later, never earlier.
            long awakeSince = Stopwatch.GetTimestamp();
            Volatile.Write(ref _currentItem, ++_itemsRun);
            var done = start();
            Volatile.Write(ref _currentItem, 0);
            long roundStamp = 0; // a Stopwatch reading taken just before the next round, for its timers (0: none)
            while (true)
            {
                // A round leaves the context of its last item installed (issue 20, session 15: no reset per round when the
                // next round follows at once) and its frame running (h167); the domain's own context is put back, and the
                // running frame cleared, before any other work below.
                RunRound(roundStamp);
                roundStamp = 0;
                if (_crash is not null)
                {
                    SynchronizationContext.SetSynchronizationContext(_syncContext);
                    RunningFrame = null;
                    var crash = _crash;
                    _crash = null;
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(crash).Throw();
                }

                if (done.IsCompleted)
                {
                    return;
                }

                if (_local.Count > 0 || HasPostHint())
                {
                    if (_poller.HasRegistrations)
                    {
                        // Busy: still gather ready I/O once per round (no blocking), so a queue that never drains cannot starve it.
                        SynchronizationContext.SetSynchronizationContext(_syncContext);
                        RunningFrame = null;
                        _poller.PollNow();
                    }

                    continue;
                }

                SynchronizationContext.SetSynchronizationContext(_syncContext);
                RunningFrame = null;
                long idleAt = Stopwatch.GetTimestamp();
                if (FireDueTimers(idleAt))
                {
                    roundStamp = idleAt; // the round that runs them checks the timers against the same reading
                    continue;
                }

                // Busy time is taken when the domain goes idle (two clock reads per sleep, none per round or item).
                Interlocked.Add(ref _busyTicks, idleAt - awakeSince);
                if (EioTrace.On)
                {
                    EioTrace.DomainIdle();
                }

                Yields.ReleaseCarried();
                WaitForWork(idleAt);
                awakeSince = Stopwatch.GetTimestamp();
                roundStamp = awakeSince;
                if (EioTrace.On)
                {
                    EioTrace.DomainBusy();
                }
            }
        }
        finally
        {
            if (TraceRing is not null)
            {
                EioTrace.DomainFinished(this); // its ring can be read to the end and reused
            }

            DomainRegistry.Unregister(this);
            _poller.Dispose();
            Volatile.Write(ref _currentItem, 0);
            RunningFrame = null;
            _inbox.LoopStack = 0; // before the thread: OnLoopStack's callers read it (LoopThreadContext)
            _spinCandidate = null; // a finished domain keeps no waiter (§215)
            Interlocked.CompareExchange(ref LastLoop, null, this); // a finished domain is not kept alive by the guess
            _thread = null; // a finished domain's yields are not armed on its source (IsCurrentThread)
            Yields.LeaveLoop(); // before the run queue can go to the thread's next domain (below)
            t_current = previousDomain;
            SynchronizationContext.SetSynchronizationContext(previousContext);
            if (_local.Count == 0 && _local.Capacity <= SpareQueueMaxCapacity)
            {
                // No more local items can come (t_current is no longer this domain): the array goes to the next domain,
                // without the yield source its slots may still hold (it would keep this domain alive).
                _local.ClearSlots();
                t_spareQueue = _local;
                _local = new RunQueue();
            }
        }
    }

    /// <summary>An address in this thread's stack just below <see cref="RunLoop"/>'s frame, with at least
    /// <see cref="YieldSource.LoopStackWindow"/> of this thread's own stack below it; 0 when the thread has less stack left
    /// (then no registration is told by its stack address: <see cref="YieldSource.EnterLoop"/>).</summary>
    /// <remarks><see cref="RuntimeHelpers.TryEnsureSufficientExecutionStack"/> is true when at least 128 KB (64-bit; 64 KB
    /// on 32-bit) of the thread's stack is left below the caller, so the window (32 KB) below the returned address is this
    /// thread's stack and no other thread's.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe nuint LoopStackMark()
    {
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            return 0;
        }

        byte mark = 0;
        return (nuint)(&mark);
    }

    /// <summary>One round: the inbox moved to the run queue, due timers fired, then the continuations queued at this point
    /// run (the ones they queue wait for the next round). Leaves the last item's synchronization context installed and
    /// its frame in <see cref="RunningFrame"/> (the caller puts the domain's context back and clears the frame before it
    /// does anything but another round).</summary>
    /// <param name="stamp">A <see cref="Stopwatch"/> reading taken just before this round (on waking), which the due
    /// timers are checked against; 0: they read the clock themselves (only when a timer is armed).</param>
    private void RunRound(long stamp)
    {
        if (HasPostHint())
        {
            DrainRemote();
        }

        if (_timers.Count != 0)
        {
            SynchronizationContext.SetSynchronizationContext(_syncContext); // timers fire outside any fiber's item
            RunningFrame = null;
            FireDueTimers(stamp);
        }

        int n = _local.Count;
        if (n == 0)
        {
            return;
        }

        // One try per round, not per item (h167): a local that lives across a handler is kept on the stack, so with the
        // try in the loop its counters and the context's field were loaded and stored per item. An item that throws ends
        // the try; the round goes on with the items after it, so each of the round's items runs, as before.
        while (true)
        {
            try
            {
                RunItems(n);
                break;
            }
            catch (Exception ex)
            {
                // Fiber continuations never throw (async methods capture exceptions); a throwing
                // posted callback is a bug in foreign code: stop the domain and report it.
                _crash ??= ex;
                n = _roundLeft;
                if (n == 0)
                {
                    break;
                }
            }
        }

        Volatile.Write(ref _currentItem, 0);
    }

    /// <summary>Runs the first <paramref name="count"/> queued items (fewer if the queue empties first): the body of a
    /// round. When one throws, <see cref="_roundLeft"/> is the number of them not yet started.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RunItems(int count)
    {
        // The thread's context, read and written through its field (h161): an item whose context is the one installed (a
        // fiber resuming after the item before it, e.g. the last item of the round before) stores nothing, and no item
        // reads the thread-static current thread. An item may change the context itself (a frame entered and left), so
        // the field, not the last item's frame, is what the next item's context is compared with.
        ref SynchronizationContext? installed = ref s_threadContextField ? ref ThreadContext(_thread!) : ref Unsafe.NullRef<SynchronizationContext?>();
        while (count > 0 && _local.TryDequeue(out var item))
        {
            _roundLeft = --count;
            if (!ReferenceEquals(RunningFrame, item.Frame))
            {
                RunningFrame = item.Frame; // a fiber resuming after its own item (the one-fiber loop) stores nothing (h167)
            }

            var context = item.Frame ?? (SynchronizationContext)_syncContext; // the item's frame (h117)
            if (Unsafe.IsNullRef(ref installed))
            {
                SynchronizationContext.SetSynchronizationContext(context);
            }
            else if (!ReferenceEquals(installed, context))
            {
                installed = context;
            }

            Volatile.Write(ref _currentItem, ++_itemsRun); // a sequence number, not a timestamp: no clock read per item
            if (EioTrace.On)
            {
                EioTrace.ItemStarted(this, item.Frame);
            }

            item.Run();
        }
    }

    /// <summary>The number of the running round's items not yet started (written before each item runs, read by the round
    /// when one throws; domain thread only).</summary>
    private int _roundLeft;

    private const int MailEmpty = 0;
    private const int MailWriting = 1; // a poster has claimed the mailbox and is storing its item
    private const int MailFull = 2;
    private const int MailDraining = 3; // the domain's thread holds the mailbox while it drains the queue

    /// <summary>Whether something was posted from another thread and not yet drained: the mailbox is not empty or the queue's
    /// flag is set (one read of the inbox line's word that holds both). A hint: a post between its enqueue and its flag
    /// is not seen (the sleep protocol looks at the queue itself).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool HasPostHint() => Volatile.Read(ref Unsafe.As<int, long>(ref _inbox.Posted)) != 0;

    /// <summary>Whether the mailbox holds (or is being given) an item.</summary>
    private bool HasMail => Volatile.Read(ref _inbox.Mail) is MailWriting or MailFull;

    /// <summary>Moves the items posted from other threads to the run queue (the start of a round that saw the hint; also
    /// <see cref="ProcessEventsWhileBlocked"/>): the mailbox's item first, then the queue's.</summary>
    /// <remarks>Out of line (h167): its item, a struct of references on the stack, made every round's prolog clear 24 bytes
    /// of stack.
    /// <para><b>Order</b> (h192): a post goes to the mailbox only when it finds the queue empty and the mailbox empty, so a
    /// post that finds the mailbox taken is queued behind it; the mailbox's item is moved first. While the queue is drained
    /// the mailbox is held (<see cref="MailDraining"/>): a post meanwhile goes to the queue, behind the ones being drained,
    /// never into a mailbox that the next round would take before them. So the items of one poster run in the order it
    /// posted them, as with the queue alone.</para></remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DrainRemote(bool drainQueue = false)
    {
        ref var inbox = ref _inbox;
        bool held = TakeMail(ref inbox);
        if (held)
        {
            _remoteArrived = true; // cross-domain traffic in this busy stretch: spin a little before the next sleep
        }

        if (drainQueue || Volatile.Read(ref inbox.Posted) != 0)
        {
            if (!held)
            {
                // Hold the mailbox (taking an item that arrives meanwhile): no post may land there while the queue drains.
                while (true)
                {
                    if (Interlocked.CompareExchange(ref inbox.Mail, MailDraining, MailEmpty) == MailEmpty)
                    {
                        break;
                    }

                    if (TakeMail(ref inbox))
                    {
                        _remoteArrived = true;
                        break;
                    }
                }
            }

            Interlocked.Exchange(ref inbox.Posted, 0); // a full fence: a post whose flag this clears is seen by the drain below
            if (_remote.TryDequeue(out var r))
            {
                _remoteArrived = true;
                do
                {
                    _local.Enqueue(r.Callback, r.State, r.Frame);
                }
                while (_remote.TryDequeue(out r));
            }

            held = true;
        }

        if (held)
        {
            Volatile.Write(ref inbox.Mail, MailEmpty);
        }
    }

    /// <summary>Moves the mailbox's item to the run queue if it holds one (waiting out a poster that is storing it); true when
    /// it did: the mailbox is then held by this thread (<see cref="MailFull"/> until the caller stores
    /// <see cref="MailEmpty"/> or <see cref="MailDraining"/>).</summary>
    private bool TakeMail(ref InboxLine inbox)
    {
        int m = Volatile.Read(ref inbox.Mail);
        if (m == MailWriting)
        {
            var spinner = default(SpinWait);
            do
            {
                spinner.SpinOnce(sleep1Threshold: -1); // the poster is between its claim and its three stores
                m = Volatile.Read(ref inbox.Mail);
            }
            while (m == MailWriting);
        }

        if (m != MailFull)
        {
            return false;
        }

        // Only this thread moves the mailbox on from MailFull: the item is ours.
        if (inbox.MailInDrain != 0)
        {
            // A completion that carries its value (§209): run here, it completes its waiter and queues the continuation
            // where the item would have been queued (no user code runs in the drain).
            inbox.MailInDrain = 0;
            DrainedValue = inbox.MailValue;
            var completion = Unsafe.As<Action<object?>>(inbox.MailCallback!);
            var target = inbox.MailState;
            inbox.MailCallback = null;
            inbox.MailState = null;
            completion(target);
            return true;
        }

        _local.Enqueue(inbox.MailCallback!, inbox.MailState, inbox.MailFrame);
        inbox.MailCallback = null;
        inbox.MailState = null;
        inbox.MailFrame = null;
        return true;
    }

    /// <summary>The field behind <see cref="SynchronizationContext.Current"/> of <paramref name="thread"/> (CoreLib's
    /// <c>Thread._synchronizationContext</c>: <c>SetSynchronizationContext</c> stores into it, <c>Current</c> reads it).</summary>
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_synchronizationContext")]
    private static extern ref SynchronizationContext? ThreadContext(Thread thread);

    /// <summary>Whether <see cref="ThreadContext"/> is there (and is the field <c>SetSynchronizationContext</c> writes) in
    /// the runtime that runs; when not, a round installs each item's context through the public API.</summary>
    private static readonly bool s_threadContextField = ProbeThreadContextField();

    private static bool ProbeThreadContextField()
    {
        var previous = SynchronizationContext.Current;
        try
        {
            var probe = new SynchronizationContext();
            SynchronizationContext.SetSynchronizationContext(probe);
            return ReferenceEquals(ThreadContext(Thread.CurrentThread), probe);
        }
        catch (MissingFieldException)
        {
            return false;
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    private readonly List<Action> _beforeOutput = []; // RunBeforeOutput's actions not run yet (domain thread only)

    /// <summary>Whether this domain's backend hands its fibers' output (socket sends) to the kernel only when the domain
    /// submits its queued I/O (between scheduler rounds, and before it sleeps), so that <see cref="RunBeforeOutput"/> can
    /// order work before it: true on the io_uring backend (unless <c>EioBackendOptions.UringDirectSend</c> is on); false
    /// on the epoll and portable backends and the mock, whose sends reach the kernel inside the write call.</summary>
    /// <remarks>[ext] No Eio equivalent: the property a server needs to write its log Redis's way (see
    /// <see cref="RunBeforeOutput"/>). Fixed for the domain's life.</remarks>
    public bool DefersOutput => _poller.DefersOutput;

    /// <summary>Runs <paramref name="action"/> once, on this domain's thread, before the domain next hands queued I/O to the
    /// kernel: before any socket send queued from now on (by any fiber of the domain) can leave, and before the domain
    /// sleeps. Only on a domain that <see cref="DefersOutput"/>.</summary>
    /// <param name="action">The work: it runs outside any fiber (it must not suspend) and must not throw (an exception
    /// stops the domain, as a throwing continuation does). It may call <see cref="RunBeforeOutput"/> again (then it runs
    /// before the next submission after this one).</param>
    /// <exception cref="InvalidOperationException">Called from another thread than this domain's, or the domain does not
    /// defer its output (<see cref="DefersOutput"/> false: the caller must do the work at once instead).</exception>
    /// <remarks>
    /// [ext] No Eio equivalent: Redis's <c>beforeSleep</c>, which writes the append-only file's buffer
    /// (<c>flushAppendOnlyFile</c>) before it writes the replies of the event loop's iteration
    /// (<c>handleClientsWithPendingWrites</c>), so that no client sees a reply before the write it acknowledges is in the
    /// file. Here a fiber queues its reply as usual and goes on (no wait of its own); the action (one <c>write</c> for
    /// every reply queued in the meantime) runs when the domain next enters its ring, before the kernel sees those sends.
    /// Actions run in the order they were given; the same action given twice runs twice.
    /// </remarks>
    public void RunBeforeOutput(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        if (!IsCurrent)
        {
            throw new InvalidOperationException("RunBeforeOutput is called from the domain's own thread only.");
        }

        if (!_poller.DefersOutput)
        {
            throw new InvalidOperationException("This domain's backend sends output at once (Domain.DefersOutput is false).");
        }

        _beforeOutput.Add(action);
        BeforeOutputPending = true;
    }

    /// <summary>Asks the domain's next sleep to last until <paramref name="completions"/> I/O completions have arrived or
    /// <paramref name="maxWait"/> has passed, whichever comes first, rather than until the first one: N receives then cost
    /// one wake-up of the domain's thread instead of up to N (io_uring: <c>io_uring_enter</c>'s min_complete; the other
    /// backends ignore the hint). Until that sleep the domain's polls between busy rounds submit its I/O without
    /// collecting completions (a domain that stays busy drops the hint after 64 of them). Work posted from another thread
    /// is run when the sleep ends. A later call replaces the hint; the sleep consumes it.</summary>
    /// <param name="completions">Completions to wait for (at most 1: no effect).</param>
    /// <param name="maxWait">The longest the sleep may then last (the domain's next timer still bounds it).</param>
    /// <remarks>Not in Eio (the scheduler's wait is internal there). For a server that knows how many replies' senders will
    /// come back before it has anything to do (the KV server's <c>appendfsync always</c> rounds: the writers it just
    /// answered), as Redis's event loop gets them in one <c>epoll_wait</c>.</remarks>
    /// <exception cref="InvalidOperationException">Called from another thread than this domain's.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="completions"/> or <paramref name="maxWait"/> is
    /// negative (a negative limit would make the hinted sleep unbounded).</exception>
    public void HintNextWait(int completions, TimeSpan maxWait)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(completions);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWait, TimeSpan.Zero);
        if (!IsCurrent)
        {
            throw new InvalidOperationException("HintNextWait is called from the domain's own thread only.");
        }

        _poller.HintNextWait(completions, maxWait.Ticks * 100);
    }

    /// <summary>Some <see cref="RunBeforeOutput"/> action waits: the poller calls <see cref="RunBeforeOutputActions"/>
    /// before it next submits (domain thread only).</summary>
    internal bool BeforeOutputPending;

    /// <summary>Runs the actions given to <see cref="RunBeforeOutput"/> (the poller, before it submits; domain thread only).
    /// Actions given while these run are run too.</summary>
    internal void RunBeforeOutputActions()
    {
        BeforeOutputPending = false;
        var actions = _beforeOutput;
        try
        {
            for (int i = 0; i < actions.Count; i++)
            {
                actions[i]();
            }
        }
        finally
        {
            actions.Clear();
            BeforeOutputPending = false;
        }
    }

    private bool _inNestedRound; // ProcessEventsWhileBlocked is running (it does not nest)

    /// <summary>Runs, on the calling domain and from inside a work item that cannot suspend, the work that is ready now:
    /// I/O readiness gathered without waiting, due timers, and the continuations queued (at most one round of them).</summary>
    /// <param name="maxItems">The most continuations to run (the rest stay queued for the next call or the next round).</param>
    /// <returns>The number of continuations run (0 when called on a thread that is not a domain, or re-entrantly).</returns>
    /// <remarks>
    /// [ext] No Eio equivalent: Redis's <c>processEventsWhileBlocked</c>. A long synchronous computation that holds its
    /// domain (a Lua script past Redis's <c>busy-reply-threshold</c>) calls this periodically so that the other fibers of
    /// the domain can answer their clients meanwhile. The caller must make sure that the fibers which may run cannot
    /// touch the state its computation is using (they run in the middle of it). Never waits; never nests (a call from
    /// a continuation run by it returns 0). A continuation that throws stops the domain as in a normal round.
    /// </remarks>
    public static int ProcessEventsWhileBlocked(int maxItems = 1024)
    {
        var domain = t_current;
        if (domain is null || domain._inNestedRound || maxItems <= 0)
        {
            return 0;
        }

        domain._inNestedRound = true;
        long outerItem = Volatile.Read(ref domain._currentItem);
        var outerFrame = domain.RunningFrame;
        var outerContext = SynchronizationContext.Current;
        int ran = 0;
        try
        {
            if (domain._poller.HasRegistrations)
            {
                domain._poller.PollNow();
            }

            domain.DrainRemote(drainQueue: true);

            domain.FireDueTimers(0);
            int n = Math.Min(domain._local.Count, maxItems);
            for (; ran < n && domain._local.TryDequeue(out var item); ran++)
            {
                domain.RunningFrame = item.Frame;
                SynchronizationContext.SetSynchronizationContext(item.Frame ?? (SynchronizationContext)domain._syncContext);
                Volatile.Write(ref domain._currentItem, ++domain._itemsRun);
                try
                {
                    item.Run();
                }
                catch (Exception ex)
                {
                    domain._crash ??= ex;
                }
            }
        }
        finally
        {
            domain.RunningFrame = outerFrame;
            SynchronizationContext.SetSynchronizationContext(outerContext);
            Volatile.Write(ref domain._currentItem, outerItem);
            domain._inNestedRound = false;
        }

        return ran;
    }

    /// <summary>The timers' time (<see cref="ITimeSource.Now"/>): from <paramref name="stamp"/>, a <see cref="Stopwatch"/>
    /// reading the caller took, when the domain runs on real time and there is one; otherwise read from the source.</summary>
    private long TimeAt(long stamp) => _realTime && stamp != 0 ? StopwatchTimeSource.FromTimestamp(stamp) : _time.Now;

    /// <summary>Completes the timers whose deadline has come; true if one woke a fiber.</summary>
    /// <param name="stamp">A <see cref="Stopwatch"/> reading taken just before (0: none; the clock is read when a timer is armed).</param>
    private bool FireDueTimers(long stamp)
    {
        bool fired = false;
        if (_timers.Count == 0)
        {
            return false;
        }

        long now = TimeAt(stamp);
        while (_timers.TryPeek(out var w, out var key))
        {
            if (w.IsDone)
            {
                _timers.Dequeue();
                DroppedDeadTimer();
                continue;
            }

            if (key.Deadline > now)
            {
                break;
            }

            _timers.Dequeue();
            fired |= w.TryComplete(default);
        }

        return fired;
    }

    private void PruneTimers()
    {
        while (_timers.TryPeek(out var w, out _) && w.IsDone)
        {
            _timers.Dequeue();
            DroppedDeadTimer();
        }
    }

    /// <summary>Sleeps in the poller up to <paramref name="timeout"/> of real time until work is posted from another thread; true if some was.</summary>
    internal bool WaitForRemote(TimeSpan timeout)
    {
        Interlocked.Exchange(ref _inbox.Sleeping, 1);
        // A wake-up comes only from a post to _remote, so "woken" is "_remote is not empty", whatever the poller; a stale
        // wake (an earlier post already run) only makes it wait again for the rest of the grace.
        long start = Stopwatch.GetTimestamp();
        while (!HasMail && _remote.IsEmpty)
        {
            double left = (timeout - Stopwatch.GetElapsedTime(start)).TotalMilliseconds;
            if (left <= 0)
            {
                break;
            }

            _poller.Wait((int)Math.Min(int.MaxValue - 1, Math.Ceiling(left)));
        }

        Volatile.Write(ref _inbox.Sleeping, 0);
        return HasMail || !_remote.IsEmpty;
    }

    private bool _remoteArrived; // a round since the last sleep ran work posted from another thread (domain thread only)

    /// <summary>The waiter of the last promise slot a fiber of this domain awaited in a busy stretch with cross-domain traffic
    /// (§215): the one the next spin marks and polls (<see cref="SuspensionNode.TrySpinMark"/>). Taken (cleared) by each
    /// idle transition; domain thread only.</summary>
    private SuspensionNode? _spinCandidate;

    private long _spinPollHits; // spins ended by the polled promise's resolution (written by the domain's thread)

    /// <summary>Notes that a fiber of this domain has just put <paramref name="waiter"/> into a promise's single-waiter slot
    /// (<c>Promise.AwaitAsync</c>; domain thread only): if the domain goes idle next and spins, it marks that promise
    /// "awaiter spinning" and polls it beside its inbox, and a resolver on another thread that finds the mark posts nothing
    /// (§215, issue 20, h218). Only while the busy stretch exchanged work with another domain (when the domain will spin):
    /// a same-domain await pays two reads of this domain's own flags and a branch, no store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void NoteSlotAwait(SuspensionNode waiter)
    {
        if (_postedToOther | _remoteArrived)
        {
            _spinCandidate = waiter;
        }
    }

    /// <summary>The number of this domain's spins that ended because the promise they polled was resolved (§215; for tests,
    /// diagnostics and benchmarks): hand-offs that came without a post.</summary>
    internal long SpinPollHits => Volatile.Read(ref _spinPollHits);

    private int _spinBackoff = 1; // idle transitions to skip after the next failed spin (doubles per failure)
    private int _spinSkip; // idle transitions left to skip before the next spin
    private long _spins; // spins started (written by the domain's thread)
    private long _spinHits; // spins that found a post (written by the domain's thread)
    private long _spinYields; // Thread.Yield calls in spins (written by the domain's thread)
    private long _wakeSpins; // spins started with the wake budget, after a post that woke its target (domain's thread)
    private long _idleWaits; // sleeps in the poller (written by the domain's thread)

    /// <summary>How many times this domain, finding nothing to run, waited in its poller (an idle transition; for
    /// diagnostics and benchmarks: with the run queue's work items, it tells how many rounds a request costs).</summary>
    internal long IdleWaits => Volatile.Read(ref _idleWaits);

    /// <summary>The number of times this domain spun for a post before sleeping (for tests and diagnostics).</summary>
    internal long Spins => Volatile.Read(ref _spins);

    /// <summary>The number of this domain's spins that found a post (for tests, diagnostics and benchmarks).</summary>
    internal long SpinHits => Volatile.Read(ref _spinHits);

    /// <summary>The number of times this domain's spins gave up the core (<see cref="Thread.Yield"/>; for diagnostics and
    /// benchmarks).</summary>
    internal long SpinYields => Volatile.Read(ref _spinYields);

    /// <summary>The number of this domain's spins that had the longer budget (<see cref="IDomainPoller.WakeSpinTicks"/>)
    /// because its busy stretch woke the domain it posted to (for tests, diagnostics and benchmarks).</summary>
    internal long WakeSpins => Volatile.Read(ref _wakeSpins);

    /// <summary>The most idle transitions a domain skips the spin for after failed spins.</summary>
    private const int MaxSpinBackoff = 1024;

    /// <summary>Spins up to <paramref name="budget"/> for a post from another thread, adaptively; true when one arrived.</summary>
    /// <param name="budget">The longest the spin lasts, in <see cref="Stopwatch"/> ticks: the poller's
    /// <see cref="IDomainPoller.SpinTicks"/> (the run's <c>EioBackendOptions.DomainSpin</c>), or its
    /// <see cref="IDomainPoller.WakeSpinTicks"/> (<c>DomainWakeSpin</c>) when the busy stretch that just ended woke the
    /// domain it posted to.</param>
    /// <param name="candidate">The waiter of the promise slot a fiber of this domain last awaited (<see cref="NoteSlotAwait"/>),
    /// or null: marked and polled while the spin lasts (§215).</param>
    /// <remarks>
    /// Called only when the busy stretch that just ended exchanged work with another domain (ran a post from another
    /// thread, or posted to another domain): the next post usually follows within microseconds, while sleeping costs a
    /// futex or eventfd wait here, a wake-up call in the sender and the OS's wake-up latency. .NET's thread pool workers
    /// spin the same way before they block. An idle domain (no cross-domain traffic since its last sleep) does not spin,
    /// so an idle server uses no CPU. The spin checks the inbox between short pause loops and yields the core every few
    /// of them (<see cref="Thread.Yield"/>), so on a machine with more runnable threads than cores the thread it waits
    /// for can run. It adapts as glibc's adaptive mutexes do: after a spin that found nothing, the next 1, 2, 4 ... 1024
    /// chances are skipped (a spin only pays when the other thread runs at the same time); a spin that found a post resets
    /// the backoff. Every backend spins: the epoll and io_uring pollers gather I/O in their wait, which the spin delays by
    /// at most its budget.
    /// <para><b>After a post that woke its target</b> (issue 20, §187) the budget is the wake budget: the answer cannot
    /// come before the woken thread runs, which takes longer than the short budget, so a short spin would always miss,
    /// this domain would sleep, and the answer would have to wake it in turn: both domains then sleep once per hand-off
    /// and the misses keep the backoff high (a state a ping-pong fell into and rarely left). The side that woke the other
    /// stays awake until the answer comes instead; the answer then finds it spinning (no wake-up), so the other side's
    /// next spin is a short one that the next post meets. A wake spin that finds nothing counts as a miss like any
    /// other, so a domain whose posts go one way to a sleeping domain spins a bounded number of times.</para>
    /// </remarks>
    private bool SpinForRemote(long budget, SuspensionNode? candidate)
    {
        if (_spinSkip > 0)
        {
            _spinSkip--;
            return false;
        }

        Volatile.Write(ref _spins, _spins + 1);

        // §215: the promise a fiber of this domain awaits, marked "awaiter spinning" (a compare-exchange of a line this
        // thread wrote when it took the slot) and polled with the inbox: a resolver that finds the mark stores its result
        // and posts nothing. Not while tracing (the resolver's side records the wake-up there).
        var polled = candidate is not null && !EioTrace.On && candidate.TrySpinMark() ? candidate : null;
        long until = Stopwatch.GetTimestamp() + budget;
        int i = 0;
        do
        {
            if (HasPostHint())
            {
                if (polled is not null)
                {
                    EndSpinPoll(polled);
                }

                _spinBackoff = 1;
                Volatile.Write(ref _spinHits, _spinHits + 1);
                return true;
            }

            if (polled is not null && polled.SpinResolved)
            {
                // The resolver saw the mark: it posted nothing, and the waiter is this domain's to complete (it queues the
                // fiber's continuation). Counted as cross-domain traffic, as a drained post is (the next idle spins).
                polled.CompleteSpun();
                _remoteArrived = true;
                _spinBackoff = 1;
                Volatile.Write(ref _spinPollHits, _spinPollHits + 1);
                Volatile.Write(ref _spinHits, _spinHits + 1);
                return true;
            }

            if ((++i & 3) == 0)
            {
                Volatile.Write(ref _spinYields, _spinYields + 1);
                Thread.Yield();
            }
            else
            {
                Thread.SpinWait(10);
            }
        }
        while (Stopwatch.GetTimestamp() < until);

        if (HasPostHint() || !_remote.IsEmpty)
        {
            if (polled is not null)
            {
                EndSpinPoll(polled);
            }

            _spinBackoff = 1;
            Volatile.Write(ref _spinHits, _spinHits + 1);
            return true;
        }

        // The mark is taken back before the domain arms its sleep: the resolver's claim and this compare-exchange are on the
        // same word, so either the claim saw the mark (this fails, and the waiter is completed here) or it will not see it
        // and posts (waking the domain as before).
        if (polled is not null && EndSpinPoll(polled))
        {
            _spinBackoff = 1;
            Volatile.Write(ref _spinPollHits, _spinPollHits + 1);
            Volatile.Write(ref _spinHits, _spinHits + 1);
            return true;
        }

        _spinSkip = _spinBackoff;
        _spinBackoff = Math.Min(MaxSpinBackoff, _spinBackoff * 2);
        return false;
    }

    /// <summary>Takes back the mark of a polled promise (§215) when the spin ends for another reason; true when a resolver
    /// had claimed the promise first (it saw the mark and posts nothing): the waiter was completed here and its continuation
    /// queued.</summary>
    private bool EndSpinPoll(SuspensionNode polled)
    {
        if (polled.TrySpinUnmark())
        {
            return false;
        }

        _remoteArrived = true;
        return true;
    }

    /// <param name="idleAt">The <see cref="Stopwatch"/> reading taken when the domain went idle: the wait's timeout is
    /// measured from it (the wait then ends no earlier than the next deadline, at most the time since that reading later).</param>
    private void WaitForWork(long idleAt)
    {
        var candidate = _spinCandidate; // taken by every idle transition (§215): only a spin may use it, and only this one
        if (candidate is not null)
        {
            _spinCandidate = null;
        }

        PruneTimers();
        bool haveTimer = _timers.TryPeek(out _, out var next);
        // The backend may handle idleness itself (the mock: virtual time jumps to the next timer, or a deadlock is reported).
        if (_poller.TryIdle(this, haveTimer, haveTimer ? next.Deadline : 0))
        {
            return;
        }

        bool crossDomain = _postedToOther || _remoteArrived;
        bool wokeOther = _wokeOther;
        _postedToOther = false;
        _remoteArrived = false;
        _wokeOther = false;
        if (crossDomain && _poller.SpinTicks > 0 && _poller.SpinBeforeSleep)
        {
            long spins = _spins;
            long budget = _poller.SpinTicks;
            if (wokeOther && _spinSkip == 0)
            {
                budget = _poller.WakeSpinTicks;
                Volatile.Write(ref _wakeSpins, _wakeSpins + 1);
            }

            if (SpinForRemote(budget, candidate))
            {
                return;
            }

            if (_spins != spins)
            {
                idleAt = 0; // the spin took time: the timeout below reads the clock again
            }
        }

        // The wake-pending flag: only the first post after this point wakes the domain (see Enqueue).
        Interlocked.Exchange(ref _inbox.Sleeping, 1);
        if (HasMail || !_remote.IsEmpty)
        {
            Volatile.Write(ref _inbox.Sleeping, 0);
            return;
        }

        int timeoutMs = -1;
        if (haveTimer)
        {
            long delta = next.Deadline - TimeAt(idleAt);
            if (delta <= 0)
            {
                Volatile.Write(ref _inbox.Sleeping, 0);
                return;
            }

            timeoutMs = (int)Math.Min(int.MaxValue - 1, (delta + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond);
        }

        Volatile.Write(ref _idleWaits, _idleWaits + 1);
        _poller.Wait(timeoutMs);
        Volatile.Write(ref _inbox.Sleeping, 0);
    }

    /// <summary>Runs <paramref name="main"/> as this domain's main fiber on the calling thread, with a root cancel context, until it finishes.</summary>
    internal T RunMain<T>(Func<CancelContext, Task<T>> main)
    {
        Task<T>? task = null;
        RunLoop(() => task = StartMainFiberAsync(main));
        return task!.GetAwaiter().GetResult();
    }

    private async Task<T> StartMainFiberAsync<T>(Func<CancelContext, Task<T>> main)
    {
        var root = new CancelContext(this, null, isProtected: false);
        var frame = FiberInfo.Create("main", root, null);
        FiberFrame.Install(frame); // restored by this method's builder when it first suspends
        RunningFrame = frame;
        MainFiber = frame.Fiber;
        if (EioTrace.On)
        {
            EioTrace.FiberCreated(frame, null);
        }

        Exception? failure = null;
        try
        {
            return await main(root);
        }
        catch (Exception ex)
        {
            failure = ex;
            throw;
        }
        finally
        {
            frame.Fiber.Finished = true;
            if (EioTrace.On)
            {
                EioTrace.FiberFinished(frame, failure);
            }
        }
    }

    /// <summary>Creates a domain with real time, to be run by <see cref="RunMain{T}(Func{CancelContext, Task{T}})"/> on some thread.</summary>
    /// <param name="name">The domain's name, or null for a default one.</param>
    /// <param name="isMain">True for the main domain of <c>EioMain.Run</c>.</param>
    /// <param name="pollerFactory">Makes the domain's poller (null: the default event poller of the Portable backend).</param>
    internal static Domain CreateReal(string? name, bool isMain = false, Func<IDomainPoller>? pollerFactory = null) =>
        new(name, StopwatchTimeSource.Instance, isMain: isMain, pollerFactory: pollerFactory);

    /// <inheritdoc/>
    public override string ToString() => $"Domain {Id} ({Name})";

    /// <summary>A run-queue entry: <see cref="Callback"/> is an <see cref="Action{T}"/> of <c>object?</c> (the kernel's own
    /// continuations) or a <see cref="SendOrPostCallback"/> (posts through the synchronization contexts), called with
    /// <see cref="State"/> by <see cref="Run"/>; carrying either as is keeps a post free of any adapter allocation.</summary>
    private readonly record struct WorkItem(Delegate Callback, object? State, FiberFrame? Frame)
    {
        /// <summary>Calls the callback with the state (a type test: both delegate types are sealed).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal void Run()
        {
            if (Callback is Action<object?> action)
            {
                action(State);
            }
            else
            {
                Unsafe.As<SendOrPostCallback>(Callback)(State);
            }
        }
    }

    /// <summary>The words of a domain that other threads read and write on every post, padded to a cache line of their own (issue
    /// 20, h192): 128 bytes of nothing either side, so whatever 8-byte boundary the object starts on, no other field of the
    /// domain (the owner's counters, <see cref="_currentItem"/>, <see cref="RunningFrame"/>, ...) shares a 64-byte line, or
    /// the 128-byte pair a line is fetched with, with them.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 320)]
    private struct InboxLine
    {
        /// <summary>The domain's <see cref="_remote"/> (the same queue), read here by the posting thread: the field of the
        /// domain itself may share a line with fields the owner writes.</summary>
        [FieldOffset(128)]
        public ConcurrentQueue<WorkItem> Queue;

        /// <summary>Set to 1 by every post to <see cref="_remote"/> after its enqueue, and exchanged to 0 by the round that
        /// then drains the inbox (issue 20, session 15): a round with nothing posted from elsewhere reads one field instead
        /// of calling <see cref="ConcurrentQueue{T}.TryDequeue"/> and <see cref="ConcurrentQueue{T}.IsEmpty"/>. A hint only:
        /// the sleep protocol still looks at the queue itself.</summary>
        [FieldOffset(136)]
        public int Posted;

        /// <summary>The mailbox's state (<see cref="MailEmpty"/>, <see cref="MailWriting"/>, <see cref="MailFull"/> or
        /// <see cref="MailDraining"/>); read with <see cref="Posted"/> as one word by <see cref="HasPostHint"/>.</summary>
        [FieldOffset(140)]
        public int Mail;

        /// <summary>1 while the domain has armed its sleep (the wake-pending flag: the first post after it wakes the domain,
        /// see <see cref="EnqueueItem"/>).</summary>
        [FieldOffset(144)]
        public int Sleeping;

        /// <summary>The mailbox's item (valid while <see cref="Mail"/> is <see cref="MailFull"/>): the one post the domain's
        /// inbox line carries itself, so that a post to an idle (spinning) domain moves this one line between the cores
        /// instead of the queue's tail, its slot and <see cref="Posted"/> (h192).</summary>
        [FieldOffset(152)]
        public Delegate? MailCallback;

        /// <inheritdoc cref="MailCallback"/>
        [FieldOffset(160)]
        public object? MailState;

        /// <inheritdoc cref="MailCallback"/>
        [FieldOffset(168)]
        public FiberFrame? MailFrame;

        /// <summary>An address in the domain thread's stack just below its loop's frame while the loop runs (0 otherwise): the
        /// mark <see cref="YieldSource"/> keeps too (h174), here for <see cref="OnLoopStack"/>. Written when the loop starts
        /// and ends; read by every waker of one of the domain's waiters (<c>Waiter.TryCompleteTaken</c>), on another thread
        /// too, which then posts to this line (h206: the line it reads is the one the post needs next, not a line of the
        /// domain's own bookkeeping first).</summary>
        [FieldOffset(176)]
        public nuint LoopStack;

        /// <summary>1 when the mailbox's item is a completion to run in the drain itself (<see cref="TryPostCompletion"/>,
        /// §209), with <see cref="MailValue"/> its value's bits; 0 for an ordinary item (valid while <see cref="Mail"/> is
        /// <see cref="MailFull"/>).</summary>
        [FieldOffset(148)]
        public int MailInDrain;

        /// <summary>The value a completion in the mailbox carries (<see cref="MailInDrain"/>).</summary>
        [FieldOffset(184)]
        public long MailValue;
    }

    /// <summary>The domain's local run queue (issue 20, h162): a FIFO ring whose capacity is a power of two, used by the
    /// domain's own thread only (<see cref="Count"/> may be read racily, for diagnostics).</summary>
    /// <remarks>What <see cref="Queue{T}"/> of <see cref="WorkItem"/> did, but an item's three references are stored field
    /// by field, each with the plain write barrier (<c>CORINFO_HELP_ASSIGN_REF</c>): <see cref="Queue{T}"/> copies its
    /// struct argument into the array with the by-reference barrier (<c>CORINFO_HELP_ASSIGN_BYREF</c>) per reference, ~23
    /// instructions each against ~8 (callgrind, FiberYield(1): 69 of a yield's 75 barrier instructions were the item's
    /// three). A dequeue copies the item out and clears its slot (no reference kept for the collector; storing nulls needs
    /// no barrier), except the slot of a carried yield, which keeps the domain's own yield source so that the next carried
    /// yield queued there stores nothing (h167); an empty queue handed to the next domain is cleared first
    /// (<see cref="ClearSlots"/>).</remarks>
    private sealed class RunQueue
    {
        private const int FirstCapacity = 16;

        private Slot[] _items = [];
        private int _head;
        private int _count;

        /// <summary>The number of queued items.</summary>
        internal int Count => _count;

        /// <summary>The length of the ring's array.</summary>
        internal int Capacity => _items.Length;

        /// <summary>Queues an item at the back.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal void Enqueue(Delegate callback, object? state, FiberFrame? frame)
        {
            var items = _items;
            int count = _count;
            if ((uint)count >= (uint)items.Length)
            {
                Grow(callback, state, frame);
                return;
            }

            // In range: the length is a power of two (0 took the branch above). Stored through the array's element, not a
            // byref from Unsafe.Add: the JIT then knows the target is on the heap and calls the plain write barrier
            // (CORINFO_HELP_ASSIGN_REF) instead of the checked one, which first tests that the target is in the heap
            // (h173: ~13 instructions less per reference; the bounds check the element access adds is two).
            int i = (_head + count) & (items.Length - 1);
            items[i].Callback = callback;
            items[i].State = state;
            items[i].Frame = frame;
            _count = count + 1;
        }

        /// <summary>Queues the yield carried by <paramref name="source"/>: one reference stored (h162).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal void EnqueueCarried(YieldSource source)
        {
            var items = _items;
            int count = _count;
            if ((uint)count >= (uint)items.Length)
            {
                Grow(source, null, null);
                return;
            }

            // A slot that carried a yield before still holds the source (the dequeue leaves it): then nothing is stored, no
            // write barrier (h167). The one-fiber loop goes round the ring with every slot holding it. The count is stored
            // first, so that nothing is live after the barrier's call (h174: the caller's fast path saves no register).
            ref var callback = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(items), (_head + count) & (items.Length - 1)).Callback;
            _count = count + 1;
            if (!ReferenceEquals(callback, source))
            {
                callback = source;
            }
        }

        /// <summary>Queues the wake-up carried by <paramref name="waiter"/> (its continuation, state and frame stay in it until
        /// the dequeue): one reference stored, not three (h186).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal void EnqueueWaiter(SuspensionNode waiter)
        {
            var items = _items;
            int count = _count;
            if ((uint)count >= (uint)items.Length)
            {
                Grow(waiter, null, null, isWaiter: true);
                return;
            }

            int i = (_head + count) & (items.Length - 1);
            items[i].Callback = waiter;
            items[i].IsWaiter = true; // the slot's other fields are clear: a dequeue clears them (below)
            _count = count + 1;
        }

        /// <summary>Takes the item at the front, if any (a carried yield is taken out of its source, a carried wake-up out of its
        /// waiter).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool TryDequeue(out WorkItem item)
        {
            int count = _count;
            if (count == 0)
            {
                item = default;
                return false;
            }

            var items = _items;
            int head = _head;
            ref var slot = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(items), head);
            var callback = slot.Callback!;
            if (slot.IsWaiter)
            {
                var waiter = Unsafe.As<SuspensionNode>(callback);
                item = new WorkItem(waiter.Continuation!, waiter.ContinuationState, waiter.Frame);
                waiter.Queued = false;
                slot = default;
            }
            else if (callback.GetType() == typeof(YieldSource))
            {
                // The slot keeps the source (the domain's own, alive as long as the domain): the next carried yield queued
                // in this slot stores nothing. Slots outside the queued range are never read.
                Unsafe.As<YieldSource>(callback).TakeCarried(out var continuation, out var state, out var frame);
                item = new WorkItem(continuation, state, frame);
            }
            else
            {
                item = new WorkItem(Unsafe.As<Delegate>(callback), slot.State, slot.Frame);
                slot = default;
            }

            _head = (head + 1) & (items.Length - 1);
            _count = count - 1;
            return true;
        }

        /// <summary>Clears every slot of an empty queue (the references a carried yield's slot keeps, see
        /// <see cref="EnqueueCarried"/>).</summary>
        internal void ClearSlots()
        {
            Debug.Assert(_count == 0, "ClearSlots on a queue with items");
            Array.Clear(_items);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Grow(object callback, object? state, FiberFrame? frame, bool isWaiter = false)
        {
            var old = _items;
            var grown = new Slot[Math.Max(FirstCapacity, old.Length * 2)];
            for (int i = 0; i < _count; i++)
            {
                grown[i] = old[(_head + i) & (old.Length - 1)];
            }

            grown[_count] = new Slot { Callback = callback, State = state, Frame = frame, IsWaiter = isWaiter };
            _items = grown;
            _head = 0;
            _count++;
        }

        /// <summary>A queued item's references, written one by one (see the class remarks).</summary>
        private struct Slot
        {
            /// <summary>The item's <see cref="WorkItem.Callback"/>, or a <see cref="YieldSource"/> whose carried yield the
            /// item is (then <see cref="State"/> and <see cref="Frame"/> are null).</summary>
            public object? Callback;
            public object? State;
            public FiberFrame? Frame;

            /// <summary>True when <see cref="Callback"/> is a <see cref="SuspensionNode"/> whose wake-up the item is (then
            /// <see cref="State"/> and <see cref="Frame"/> are null; h186). Cleared with the slot by the dequeue, so an
            /// enqueue of anything else finds it false.</summary>
            public bool IsWaiter;
        }
    }

    /// <summary>Queues <paramref name="d"/> to run on this domain as code of <paramref name="frame"/>'s fiber (null: as code
    /// in no fiber); safe from any thread.</summary>
    /// <remarks>Allocates nothing (issue 20): the queue item carries the <see cref="SendOrPostCallback"/> and its state as
    /// they are (.NET posts an awaiting method's continuation with one of a few static callbacks and the method as the
    /// state). Before, a cached adapter delegate was kept for the last callback only, so two callbacks posted in turn (a
    /// task continuation and a value-task source's) allocated a delegate and its adapter per post.</remarks>
    internal void Post(SendOrPostCallback d, object? state, FiberFrame? frame) => EnqueueItem(d, state, frame);

    /// <summary>The domain's context, installed while it runs code that is in no fiber (fiber code runs with its fiber
    /// installed instead: see <see cref="FiberFrame"/>).</summary>
    private sealed class DomainSynchronizationContext(Domain domain) : SynchronizationContext
    {
        public override void Post(SendOrPostCallback d, object? state) => domain.Post(d, state, null);

        public override void Send(SendOrPostCallback d, object? state)
        {
            if (domain.IsCurrent)
            {
                d(state);
                return;
            }

            throw new NotSupportedException("Send to a domain from another thread would block; use Post.");
        }

        public override SynchronizationContext CreateCopy() => this;
    }

    private sealed class DomainTaskScheduler : TaskScheduler
    {
        private readonly Domain domain;
        private readonly Action<object?> _execute; // one per scheduler: a queued task costs no (scheduler, task) box

        internal DomainTaskScheduler(Domain domain)
        {
            this.domain = domain;
            _execute = t => TryExecuteTask((Task)t!);
        }

        protected override void QueueTask(Task task) => domain.Enqueue(_execute, task, null);

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) =>
            domain.IsCurrent && !taskWasPreviouslyQueued && TryExecuteTask(task);

        protected override IEnumerable<Task>? GetScheduledTasks() => null;
    }
}

/// <summary>The source of monotonic time for a domain's timers, in <see cref="TimeSpan"/> ticks (100 ns).</summary>
internal interface ITimeSource
{
    long Now { get; }
}

/// <summary>Real monotonic time from <see cref="Stopwatch"/>.</summary>
internal sealed class StopwatchTimeSource : ITimeSource
{
    public static readonly StopwatchTimeSource Instance = new();
    private static readonly long s_origin = Stopwatch.GetTimestamp();

    public long Now => Stopwatch.GetElapsedTime(s_origin).Ticks;

    /// <summary>The <see cref="Now"/> of a <see cref="Stopwatch.GetTimestamp"/> reading (arithmetic only, no clock read).</summary>
    public static long FromTimestamp(long timestamp) => Stopwatch.GetElapsedTime(s_origin, timestamp).Ticks;
}
