using EioSharp.Sync;

namespace EioSharp.Domains;

/// <summary>A pool of worker domains that run submitted jobs in parallel, each job with a weight.</summary>
/// <remarks>
/// Eio: <c>Eio.Executor_pool</c> (S24).
/// <para><b>Design</b> (as in Eio): jobs go through one shared rendezvous queue. Each worker domain runs a loop that takes a
/// job whenever the sum of the weights of the jobs it is running is below 1.0, and runs each job as a fiber of its own
/// switch. A worker with spare capacity therefore runs several light jobs at once (two jobs of weight 0.6 share a worker:
/// after the first its load is 0.6 &lt; 1.0, so it takes the second), and a job of weight 1.0 runs alone. Weights are kept
/// in millionths, so sums are exact.</para>
/// <para><b>Lifetime</b>: the workers are started at once, as daemon fibers of the owning switch: they do not keep it open.
/// When the switch is cancelled or its body and other fibers finish, the pool shuts down: submitters still waiting for a
/// worker get <see cref="CancelledException"/>, and the cancellation is forwarded into the worker domains, so running jobs
/// are cancelled at their next suspension point; the switch waits for the workers to finish.</para>
/// <para><b>Thread safety</b>: jobs may be submitted from any fiber of any domain. A job runs on a worker domain, so it must
/// only use values that are safe across domains; its result is handed back to the submitter's domain.</para>
/// </remarks>
public sealed class ExecutorPool
{
    /// <summary>The load at which a worker stops taking jobs: weight 1.0 in millionths (Eio's <c>max_capacity</c>).</summary>
    private const int FullLoad = 1_000_000;

    private static int s_nextPoolId;

    private readonly AsyncQueue<Job> _jobs = new(0);
    private readonly int _maxQueued;
    private int _queued;

    /// <summary>Creates the pool and starts its <paramref name="domainCount"/> worker domains at once.</summary>
    /// <param name="sw">The owning switch: when it ends (or is cancelled), the workers and pending jobs are cancelled.
    /// The pool does not keep it open.</param>
    /// <param name="domainCount">The number of worker domains (1 or more); usually the number of cores.</param>
    /// <param name="domainManager">Starts the worker domains (<see cref="Stdenv.DomainManager"/>).</param>
    /// <param name="maxQueued">The most submitters that may wait for a worker before <see cref="TrySubmitAsync{T}(Func{Task{T}}, double)"/>
    /// reports <see cref="SubmitStatus.Rejected"/> (0 or more; 0 means "only when a worker is waiting for a job now";
    /// <see cref="int.MaxValue"/>, the default, never rejects). <see cref="SubmitAsync{T}(Func{Task{T}}, double)"/> is never rejected.</param>
    /// <exception cref="ArgumentNullException"><paramref name="sw"/> or <paramref name="domainManager"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="domainCount"/> is less than 1, or <paramref name="maxQueued"/> is negative.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> has finished or belongs to another domain (S17).</exception>
    /// <exception cref="CancelledException"><paramref name="sw"/> is cancelled.</exception>
    /// <remarks>Eio: <c>Executor_pool.create ~sw ~domain_count dm</c>. Must be called from a fiber on the switch's domain.</remarks>
    public ExecutorPool(Switch sw, int domainCount, DomainManager domainManager, int maxQueued = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(domainManager);
        ArgumentOutOfRangeException.ThrowIfLessThan(domainCount, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueued);
        sw.Check();
        DomainCount = domainCount;
        _maxQueued = maxQueued;
        int poolId = Interlocked.Increment(ref s_nextPoolId);

        // Shut down as soon as the switch is cancelled (this is also how daemons are stopped when the switch ends), and in
        // any case when it finishes. The token's callbacks run on the switch's domain, during the cancellation.
        var registration = sw.CancellationToken.Register(static q => ((AsyncQueue<Job>)q!).Close(), _jobs);
        sw.OnRelease(() =>
        {
            registration.Dispose();
            _jobs.Close();
        });

        for (int i = 0; i < domainCount; i++)
        {
            string name = $"pool{poolId}-worker{i}";
            Fiber.ForkDaemon(sw, () => domainManager.RunAsync(RunWorkerAsync, name), name);
        }
    }

    /// <summary>The number of worker domains.</summary>
    public int DomainCount { get; }

    /// <summary>The number of submitters waiting now for a worker to accept their job (approximate when read concurrently).</summary>
    public int QueuedCount => Volatile.Read(ref _queued);

    /// <summary>Runs <paramref name="job"/> on a worker domain and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="job">The job; it runs as a fiber on a worker domain.</param>
    /// <param name="weight">The share of a worker the job needs, in [0, 1]: a worker takes jobs while the sum of its running
    /// weights is below 1.0, so 1.0 runs alone and 0 never limits. Use 1.0 for CPU-bound work.</param>
    /// <returns>The job's value, on the caller's domain.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="job"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is NaN or outside [0, 1].</exception>
    /// <exception cref="CancelledException">The caller was cancelled (while waiting for a worker the job is withdrawn; while it
    /// runs the cancellation is forwarded to it and this returns only after the job has finished), or the pool shut down.</exception>
    /// <exception cref="Exception">Whatever the job threw, rethrown in the caller.</exception>
    /// <remarks>Eio: <c>Executor_pool.submit_exn ~weight</c>. <b>Scheduling</b>: waits until a worker accepts the job
    /// (first come, first served), then for its result.</remarks>
    public async Task<T> SubmitAsync<T>(Func<Task<T>> job, double weight)
    {
        var j = NewJob(job, weight);
        await EnqueueAsync(j);
        return await AwaitResultAsync(j);
    }

    /// <summary>Runs <paramref name="job"/> on a worker domain unless the pool is saturated; never throws the job's exception.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="job">The job.</param>
    /// <param name="weight">The share of a worker the job needs, in [0, 1] (see <see cref="SubmitAsync{T}(Func{Task{T}}, double)"/>).</param>
    /// <returns><see cref="SubmitStatus.Rejected"/> at once when no worker is waiting for a job and the pool's <c>maxQueued</c>
    /// submitters already wait; otherwise, once the job has run, <see cref="SubmitStatus.Succeeded"/> with its value or
    /// <see cref="SubmitStatus.Failed"/> with its exception.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="job"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is NaN or outside [0, 1].</exception>
    /// <exception cref="CancelledException">The caller was cancelled (cancellation is not a job result, S16), or the pool shut down
    /// before a worker accepted the job.</exception>
    /// <remarks>Eio: <c>Executor_pool.submit</c> (which returns a <c>result</c>), plus [ext] admission control for servers that
    /// answer "busy" instead of queueing.</remarks>
    public async Task<SubmitResult<T>> TrySubmitAsync<T>(Func<Task<T>> job, double weight)
    {
        var j = NewJob(job, weight);
        if (!TryEnqueueNow(j))
        {
            if (Interlocked.Increment(ref _queued) > _maxQueued)
            {
                Interlocked.Decrement(ref _queued);
                return SubmitResult<T>.Rejected;
            }

            try
            {
                await AddAsync(j);
            }
            finally
            {
                Interlocked.Decrement(ref _queued);
            }
        }

        try
        {
            return SubmitResult<T>.FromValue(await AwaitResultAsync(j));
        }
        catch (CancelledException) when (Fiber.IsCancelled)
        {
            throw;
        }
        catch (Exception ex)
        {
            return SubmitResult<T>.FromError(ex);
        }
    }

    /// <summary>Submits <paramref name="job"/> from a new fiber on <paramref name="sw"/> and returns a promise of its result at once.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="sw">The switch that owns the submitting fiber (and so waits for the job).</param>
    /// <param name="job">The job.</param>
    /// <param name="weight">The share of a worker the job needs, in [0, 1].</param>
    /// <returns>A promise resolved with the job's value or exception (S9: the failure does not fail <paramref name="sw"/>).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sw"/> or <paramref name="job"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is NaN or outside [0, 1].</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> belongs to another domain (S17).</exception>
    /// <remarks>Eio: <c>Executor_pool.submit_fork ~sw ~weight</c>. <b>Scheduling</b>: the submitting fiber runs at once, up to
    /// its first suspension (S12), so jobs submitted in a row are accepted in that order.</remarks>
    public Promise<T> SubmitFork<T>(Switch sw, Func<Task<T>> job, double weight)
    {
        ArgumentNullException.ThrowIfNull(sw);
        var j = NewJob(job, weight);
        return Fiber.ForkPromise(sw, async () =>
        {
            await EnqueueAsync(j);
            return await AwaitResultAsync(j);
        });
    }

    /// <summary>Converts a weight to millionths of a worker, validating it.</summary>
    private static int ToLoad(double weight)
    {
        if (double.IsNaN(weight) || weight < 0 || weight > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(weight), weight, "A job's weight must be in [0, 1].");
        }

        return (int)Math.Round(weight * FullLoad);
    }

    private static Job<T> NewJob<T>(Func<Task<T>> job, double weight)
    {
        ArgumentNullException.ThrowIfNull(job);
        return new Job<T>(job, ToLoad(weight));
    }

    private bool TryEnqueueNow(Job j)
    {
        try
        {
            return _jobs.TryAdd(j);
        }
        catch (StreamClosedException)
        {
            throw ShutDown();
        }
    }

    private async Task EnqueueAsync(Job j)
    {
        if (TryEnqueueNow(j))
        {
            return;
        }

        Interlocked.Increment(ref _queued);
        try
        {
            await AddAsync(j);
        }
        finally
        {
            Interlocked.Decrement(ref _queued);
        }
    }

    private async ValueTask AddAsync(Job j)
    {
        try
        {
            await _jobs.AddAsync(j);
        }
        catch (StreamClosedException)
        {
            throw ShutDown();
        }
    }

    private static CancelledException ShutDown() =>
        new(new InvalidOperationException("The executor pool has shut down: its switch was cancelled or finished."));

    /// <summary>Waits for an accepted job's result; if the caller is cancelled meanwhile, cancels the job and waits for it to finish.</summary>
    private static async Task<T> AwaitResultAsync<T>(Job<T> j)
    {
        try
        {
            return await j.Result.AwaitAsync();
        }
        catch (CancelledException) when (!j.Result.IsResolved)
        {
            j.RequestCancel(Fiber.CancelContext.Reason ?? new OperationCanceledException());
            await Cancel.ProtectAsync(async () =>
            {
                try
                {
                    await j.Result.AwaitAsync();
                }
                catch (Exception)
                {
                    // The job's own outcome is superseded by the caller's cancellation.
                }
            });
            throw;
        }
    }

    /// <summary>A worker domain's main loop: take jobs while the load is below 1.0, each as a fiber of the worker's switch.</summary>
    private async Task RunWorkerAsync()
    {
        await Switch.RunAsync(
            async sw =>
            {
                int load = 0;
                var spare = new Condition();
                while (true)
                {
                    while (load >= FullLoad)
                    {
                        await spare.AwaitNoMutexAsync();
                    }

                    Job job;
                    try
                    {
                        job = await _jobs.TakeAsync();
                    }
                    catch (StreamClosedException)
                    {
                        return; // shut down: the switch still waits for the running jobs
                    }

                    if (sw.CancelContext.IsCancelled)
                    {
                        // Accepted just as the worker was cancelled (a completed take returns its item, S13): the fork
                        // below would not run it (S6), so fail it here rather than leave its submitter waiting.
                        job.Reject(sw.CancelContext.MakeCancelled());
                        continue;
                    }

                    load += job.Load;
                    Fiber.Fork(sw, job.RunAsync);
                    if (job.IsFinished)
                    {
                        load -= job.Load; // finished without suspending (a tiny job): no wake-up needed
                    }
                    else
                    {
                        job.OnFinished = () =>
                        {
                            load -= job.Load;
                            spare.Broadcast();
                        };
                    }
                }
            },
            "executor-pool-worker");
    }

    /// <summary>A submitted job, as seen by the worker loop.</summary>
    private abstract class Job(int load)
    {
        public int Load { get; } = load;

        /// <summary>True once <see cref="RunAsync"/> has finished (set on the worker domain).</summary>
        public bool IsFinished { get; protected set; }

        /// <summary>Run on the worker domain when a job that suspended finishes.</summary>
        public Action? OnFinished { get; set; }

        /// <summary>Runs the job on the calling (worker) fiber and resolves its promise; never throws.</summary>
        public abstract Task RunAsync();

        public abstract void Reject(Exception error);
    }

    /// <summary>A job with its result promise and the hand-over of the submitter's cancellation.</summary>
    /// <remarks>Invariants: <c>_context</c> and <c>_domain</c> are set (under the lock) while the job runs, on the worker domain;
    /// <c>_cancelReason</c> is set once by the submitter; whichever of the two comes second delivers the cancellation, on the
    /// worker domain.</remarks>
    private sealed class Job<T>(Func<Task<T>> fn, int load) : Job(load)
    {
        private readonly object _lock = new();
        private readonly Resolver<T> _resolver = Promise.Create<T>().Resolver;
        private Exception? _cancelReason;
        private CancelContext? _context;
        private Domain? _domain;

        public Promise<T> Result => _resolver.Promise;

        public override async Task RunAsync()
        {
            // A child cancel context of the worker's switch, made directly (as Cancel.SubAsync does, without its extra
            // async layers), so that the submitter's cancellation can be delivered to this job alone.
            var frame = FiberFrame.Require();
            var ctx = new CancelContext(frame.Fiber.Domain, frame.Cancel, isProtected: false);
            var inner = new InnerFrame(frame.Fiber, ctx, frame.Switch);
            FiberFrame.Enter(inner);
            Exception? early;
            lock (_lock)
            {
                _context = ctx;
                _domain = frame.Fiber.Domain;
                early = _cancelReason;
            }

            try
            {
                if (early is not null)
                {
                    ctx.Cancel(early);
                }

                ctx.ThrowIfCancelled();
                _resolver.TryResolve(await fn());
            }
            catch (Exception ex)
            {
                _resolver.TryResolveError(ex);
            }
            finally
            {
                lock (_lock)
                {
                    _context = null;
                }

                ctx.Detach();
                inner.Exit();
                IsFinished = true;
                OnFinished?.Invoke();
            }
        }

        public override void Reject(Exception error) => _resolver.TryResolveError(error);

        /// <summary>Called by the submitter (any domain) when it is cancelled while the job runs.</summary>
        public void RequestCancel(Exception reason)
        {
            CancelContext? ctx;
            Domain? domain;
            lock (_lock)
            {
                if (_cancelReason is not null)
                {
                    return;
                }

                _cancelReason = reason;
                ctx = _context;
                domain = _domain;
            }

            if (ctx is not null)
            {
                domain!.Enqueue(static s => ((CancelContext)((object[])s!)[0]).Cancel((Exception)((object[])s!)[1]), new object[] { ctx, reason });
            }
        }
    }
}

/// <summary>The outcome of <see cref="ExecutorPool.TrySubmitAsync{T}(Func{Task{T}}, double)"/>.</summary>
public enum SubmitStatus
{
    /// <summary>The job ran and returned a value.</summary>
    Succeeded,

    /// <summary>The job ran and threw; see <see cref="SubmitResult{T}.Error"/>.</summary>
    Failed,

    /// <summary>The pool was saturated: the job was not run.</summary>
    Rejected,
}

/// <summary>The outcome of <see cref="ExecutorPool.TrySubmitAsync{T}(Func{Task{T}}, double)"/>: a value, an error, or a rejection.</summary>
/// <typeparam name="T">The job's result type.</typeparam>
/// <remarks>Eio: the <c>('a, exn) result</c> of <c>Executor_pool.submit</c>, plus the rejected case.</remarks>
public readonly struct SubmitResult<T>
{
    private readonly T _value;

    private SubmitResult(SubmitStatus status, T value, Exception? error)
    {
        Status = status;
        _value = value;
        Error = error;
    }

    internal static SubmitResult<T> Rejected => new(SubmitStatus.Rejected, default!, null);

    /// <summary>What happened to the job.</summary>
    public SubmitStatus Status { get; }

    /// <summary>The exception the job threw, when <see cref="Status"/> is <see cref="SubmitStatus.Failed"/>.</summary>
    public Exception? Error { get; }

    /// <summary>True when the job ran and returned a value.</summary>
    public bool IsSucceeded => Status == SubmitStatus.Succeeded;

    /// <summary>The job's value.</summary>
    /// <exception cref="InvalidOperationException"><see cref="Status"/> is not <see cref="SubmitStatus.Succeeded"/>.</exception>
    public T Value => Status == SubmitStatus.Succeeded
        ? _value
        : throw new InvalidOperationException($"The job has no value: it {(Status == SubmitStatus.Failed ? "failed" : "was rejected")}.", Error);

    internal static SubmitResult<T> FromValue(T value) => new(SubmitStatus.Succeeded, value, null);

    internal static SubmitResult<T> FromError(Exception error) => new(SubmitStatus.Failed, default!, error);

    /// <inheritdoc/>
    public override string ToString() => Status switch
    {
        SubmitStatus.Succeeded => $"Succeeded({_value})",
        SubmitStatus.Failed => $"Failed({Error!.GetType().Name}: {Error.Message})",
        _ => "Rejected",
    };
}
