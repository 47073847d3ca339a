
namespace EioSharp.Domains;

/// <summary>Runs blocking calls on a small pool of dedicated system threads, so they do not stall the domain.</summary>
/// <remarks>
/// Eio: <c>Eio_unix.run_in_systhread</c>.
/// <para><b>Why not the .NET thread pool</b>: a blocking call parks its thread for its whole duration. The thread pool
/// injects extra threads only slowly when its workers block, and the portable backend's socket and timer completions run
/// on those same workers, so a few slow blocking calls (DNS, file metadata, a foreign library) would delay every domain's
/// I/O. The pool here has its own threads: it starts one when a call arrives and none is idle (up to
/// <see cref="MaxThreads"/>; later calls queue), and a thread that stays idle for <see cref="IdleTimeout"/> exits.</para>
/// <para><b>Scheduling</b>: the calling fiber suspends; other fibers of its domain keep running; when the call returns, the
/// fiber is queued on its own domain. The domain counts the call as an external operation, so the mock backend does not
/// report a deadlock while it runs.</para>
/// <para><b>Cancellation</b>: a blocking call cannot be interrupted: a cancelled fiber still waits for the call to finish,
/// and gets its result (an operation that completed returns its result, S13; the next suspension point then throws).
/// The overloads taking a <see cref="CancellationToken"/> pass one that fires when the fiber is cancelled, for calls that
/// can stop early; an <see cref="OperationCanceledException"/> caused by that token becomes <see cref="CancelledException"/>.</para>
/// </remarks>
public static class Systhread
{
    /// <summary>The most system threads the pool runs at once (later calls wait for a free thread).</summary>
    /// <remarks>Bounds the memory and scheduler cost of many concurrent blocking calls; 64 is Eio_unix's order of magnitude for
    /// DNS/file offload and far above the 2-16 domains a process normally runs.</remarks>
    public const int MaxThreads = 64;

    /// <summary>How long an idle system thread waits for another call before it exits.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Runs <paramref name="blocking"/> on a system thread and returns its result on the calling fiber's domain.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="blocking">The blocking call; it runs on another thread, so it must only use values that are safe across threads.</param>
    /// <returns>What <paramref name="blocking"/> returned.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="blocking"/> is null.</exception>
    /// <exception cref="CancelledException">The fiber was already cancelled when this was called (the call is not started).</exception>
    /// <exception cref="InvalidOperationException">Called outside a fiber.</exception>
    /// <exception cref="Exception">Whatever <paramref name="blocking"/> threw, rethrown on the fiber.</exception>
    /// <remarks>Eio: <c>Eio_unix.run_in_systhread</c>.</remarks>
    public static Task<T> RunAsync<T>(Func<T> blocking)
    {
        ArgumentNullException.ThrowIfNull(blocking);
        return RunCoreAsync(blocking, static (f, _) => ((Func<T>)f)(), withToken: false);
    }

    /// <summary>Runs <paramref name="blocking"/> on a system thread with a token that fires when the fiber is cancelled.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="blocking">The blocking call; receives the fiber's cancellation token.</param>
    /// <returns>What <paramref name="blocking"/> returned.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="blocking"/> is null.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled, before the call started or while it ran and the call
    /// stopped with an <see cref="OperationCanceledException"/>.</exception>
    /// <exception cref="Exception">Whatever <paramref name="blocking"/> threw.</exception>
    /// <remarks>Eio: <c>Eio_unix.run_in_systhread</c>, plus [ext] .NET cancellation tokens (S17a).</remarks>
    public static Task<T> RunAsync<T>(Func<CancellationToken, T> blocking)
    {
        ArgumentNullException.ThrowIfNull(blocking);
        return RunCoreAsync(blocking, static (f, token) => ((Func<CancellationToken, T>)f)(token), withToken: true);
    }

    /// <summary>Runs <paramref name="blocking"/> on a system thread and waits for it.</summary>
    /// <param name="blocking">The blocking call.</param>
    /// <returns>A task that completes, on the fiber's domain, when the call has returned.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="blocking"/> is null.</exception>
    /// <exception cref="CancelledException">The fiber was already cancelled when this was called.</exception>
    /// <exception cref="Exception">Whatever <paramref name="blocking"/> threw.</exception>
    /// <remarks>Eio: <c>Eio_unix.run_in_systhread</c>.</remarks>
    public static Task RunAsync(Action blocking)
    {
        ArgumentNullException.ThrowIfNull(blocking);
        return RunCoreAsync<bool>(blocking, static (f, _) => { ((Action)f)(); return true; }, withToken: false);
    }

    /// <summary>The number of system threads alive now (busy or idle).</summary>
    public static int ThreadCount => SysthreadPool.Shared.ThreadCount;

    private static async Task<T> RunCoreAsync<T>(object fn, Func<object, CancellationToken, T> invoke, bool withToken)
    {
        var frame = FiberFrame.Require();
        var context = frame.Cancel;
        context.ThrowIfCancelled();
        var domain = frame.Fiber.Domain;
        var token = withToken ? context.Token : CancellationToken.None;
        var waiter = new Waiter<T>(domain) { TraceReason = Tracing.TraceReason.Systhread }; // not attached to the cancel context: the call cannot be interrupted
        long fiberId = frame.Fiber.Id;
        domain.BeginExternal();
        SysthreadPool.Shared.Post(
            ExecutionContext.Capture(),
            () =>
            {
                long offload = Tracing.EioTrace.On ? Tracing.EioTrace.SysthreadStarted(fiberId) : 0;
                T result = default!;
                Exception? error = null;
                try
                {
                    result = invoke(fn, token);
                }
                catch (Exception ex)
                {
                    error = ex;
                }

                try
                {
                    if (offload != 0)
                    {
                        Tracing.EioTrace.SysthreadFinished(fiberId, offload, error); // before the fiber is woken
                    }

                    if (error is null)
                    {
                        waiter.TryComplete(result);
                    }
                    else if (error is OperationCanceledException oce && token.IsCancellationRequested)
                    {
                        waiter.TryFail(new CancelledException(context.Reason ?? oce));
                    }
                    else
                    {
                        waiter.TryFail(error);
                    }
                }
                finally
                {
                    // After the continuation is posted, so the mock never sees "no external work, empty queue" in between.
                    domain.EndExternal();
                }
            });
        return await waiter.Task;
    }
}

/// <summary>The threads behind <see cref="Systhread"/>: started on demand, exit when idle.</summary>
/// <remarks>
/// Invariants: <c>_threads</c> counts live threads and <c>_idle</c> those waiting in <c>TryTake</c>. A poster adds its item
/// and then starts a thread if no thread is idle; a thread that times out leaves the counts and then re-checks the queue, so
/// (both sides using interlocked operations) an item is never left without a thread.
/// </remarks>
internal sealed class SysthreadPool
{
    public static readonly SysthreadPool Shared = new(Systhread.MaxThreads, Systhread.IdleTimeout);

    // An idle thread waits on the lock's monitor (Monitor.Wait), which blocks at once: the BlockingCollection used before
    // spun with sched_yield (about 35 calls) every time a thread ran out of work, which under appendfsync always (one
    // offloaded fdatasync per round) cost more CPU than the fsync calls themselves (issue 14).
    private readonly Queue<(ExecutionContext? Context, Action Work)> _queue = new();
    private readonly object _lock = new();
    private readonly int _maxThreads;
    private readonly int _idleTimeoutMs;
    private int _threads;
    private int _idle; // threads waiting for work (under _lock)
    private int _nextId;

    public SysthreadPool(int maxThreads, TimeSpan idleTimeout)
    {
        _maxThreads = maxThreads;
        _idleTimeoutMs = (int)idleTimeout.TotalMilliseconds;
    }

    public int ThreadCount => Volatile.Read(ref _threads);

    public void Post(ExecutionContext? context, Action work)
    {
        bool start;
        lock (_lock)
        {
            _queue.Enqueue((context, work));
            start = _idle < _queue.Count; // not enough waiting threads for what is queued (a woken one counts until it runs)
            if (_idle > 0)
            {
                Monitor.Pulse(_lock);
            }
        }

        if (start)
        {
            TryStartThread();
        }
    }

    private void TryStartThread()
    {
        int n;
        do
        {
            n = Volatile.Read(ref _threads);
            if (n >= _maxThreads)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _threads, n + 1, n) != n);

        var t = new Thread(Loop)
        {
            IsBackground = true,
            Name = "eio systhread " + Interlocked.Increment(ref _nextId),
        };
        t.UnsafeStart();
    }

    private void Loop()
    {
        while (true)
        {
            (ExecutionContext? Context, Action Work) item;
            lock (_lock)
            {
                if (_queue.Count == 0)
                {
                    _idle++;
                    bool signalled = Monitor.Wait(_lock, _idleTimeoutMs);
                    _idle--;
                    if (_queue.Count == 0)
                    {
                        if (signalled)
                        {
                            continue; // another thread took the item it was woken for
                        }

                        // Idle for the timeout: leave. Under the lock, so a Post after this sees one thread fewer
                        // waiting and starts a new one if needed: no item is stranded.
                        Interlocked.Decrement(ref _threads);
                        return;
                    }
                }

                item = _queue.Dequeue();
            }

            if (item.Context is null)
            {
                item.Work();
            }
            else
            {
                ExecutionContext.Run(item.Context, static w => ((Action)w!)(), item.Work);
            }
        }
    }
}
