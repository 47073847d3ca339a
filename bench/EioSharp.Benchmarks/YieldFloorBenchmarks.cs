using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using BenchmarkDotNet.Attributes;

namespace EioSharp.Benchmarks;

/// <summary>
/// The floor for <see cref="CoreYield"/>'s one-fiber row (issue 20, h158): the least code a library outside
/// System.Private.CoreLib can write for "suspend this async method and resume it from my own scheduler loop on this
/// thread", with no EioSharp in it. One thread, a run queue of continuations, an async method awaiting a yield
/// <see cref="Ops"/> times. Each variant is one way the await can be wired:
/// <list type="bullet">
/// <item><see cref="ValueTaskSource"/> (a): <c>await</c> of a <see cref="ValueTask"/> over a reusable, hand-rolled
/// <see cref="IValueTaskSource"/> with a version token, queue items of (continuation, state): EioSharp's shape.</item>
/// <item><see cref="ManualResetCore"/> (a'): the same with <see cref="ManualResetValueTaskSourceCore{TResult}"/> inside
/// the source; the loop queues the source and completes it, which runs the continuation inline.</item>
/// <item><see cref="CustomAwaiter"/> (b): a struct awaiter (<see cref="ICriticalNotifyCompletion"/>); the builder hands it
/// the box's <c>MoveNextAction</c> (allocated once per async method, 64 B), which the loop invokes.</item>
/// <item><see cref="ValueTaskSourceNoFlow"/> (c): (a) with <see cref="ExecutionContext.SuppressFlow"/> around the whole
/// loop, so the box captures no context and resumes without <c>ExecutionContext.RunInternal</c> (sizes its share; not a
/// shape a library can ship: AsyncLocal and FiberLocal values would stop flowing).</item>
/// <item><see cref="TaskYield"/> (d): <c>Task.Yield</c> on the thread pool, the baseline (as CoreYield.TaskYield with one
/// task).</item>
/// </list>
/// </summary>
public class YieldFloor : CoreBench
{
    private const int Ops = 100_000;

    /// <summary>(d) One task doing <c>Task.Yield</c> <see cref="Ops"/> times on the thread pool.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public void TaskYield() => Task.Run(async () =>
    {
        for (int i = 0; i < Ops; i++)
        {
            await Task.Yield();
        }
    }).Wait();

    /// <summary>(a) ValueTask over a hand-rolled IValueTaskSource, resumed by a one-thread loop.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void ValueTaskSource()
    {
        var loop = new VtsLoop();
        loop.Run(VtsBody(loop, Ops));
    }

    /// <summary>(a') ValueTask over ManualResetValueTaskSourceCore, completed by a one-thread loop.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void ManualResetCore()
    {
        var loop = new MrvtsLoop();
        loop.Run(MrvtsBody(loop, Ops));
    }

    /// <summary>(b) A struct awaiter whose resume invokes the builder's MoveNextAction.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void CustomAwaiter()
    {
        var loop = new ActionLoop();
        loop.Run(ActionBody(loop, Ops));
    }

    /// <summary>(c) (a) with the execution context's flow suppressed for the whole loop.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void ValueTaskSourceNoFlow()
    {
        var loop = new VtsLoop();
        using (ExecutionContext.SuppressFlow())
        {
            loop.Run(VtsBody(loop, Ops));
        }
    }

    /// <summary>(a1) (a) with EioSharp's run-queue item: a <see cref="Queue{T}"/> of three references (callback, state,
    /// frame), the yielding frame armed by the awaitable.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void StepQueue() => RunStep<StepQueueOnly>();

    /// <summary>(a2) (a1) and, per item, what <c>Domain.RunRound</c> writes: the running frame (a volatile field), the
    /// item's frame as the synchronization context, the item counter (volatile), a trace flag read, a try/catch.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void StepItem() => RunStep<StepItemWrites>();

    /// <summary>(a3) (a2) and the yield side's checks: the current frame read from the synchronization context (a
    /// thread-static read and a type test), the domain's thread-static compared in the awaitable and in the enqueue,
    /// the frame's cancellation checked in <c>GetResult</c>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void StepChecks() => RunStep<StepYieldChecks>();

    /// <summary>(a4) (a3) with one item per round and the run loop's per-round checks between rounds (an inbox flag,
    /// the timer count, the item count, the main task's completion, a poller flag through an interface).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void StepRounds() => RunStep<StepRoundLoop>();

    private static void RunStep<TPolicy>()
        where TPolicy : struct, IStepPolicy
    {
        var loop = new StepLoop<TPolicy>();
        loop.Run(() => StepBody(loop, Ops)); // started inside the loop's setup, as a domain starts its main fiber
    }

    private static async Task StepBody<TPolicy>(StepLoop<TPolicy> loop, int n)
        where TPolicy : struct, IStepPolicy
    {
        for (int i = 0; i < n; i++)
        {
            await loop.Yield();
        }
    }

    private static async Task VtsBody(VtsLoop loop, int n)
    {
        for (int i = 0; i < n; i++)
        {
            await loop.Yield();
        }
    }

    private static async Task MrvtsBody(MrvtsLoop loop, int n)
    {
        for (int i = 0; i < n; i++)
        {
            await loop.Yield();
        }
    }

    private static async Task ActionBody(ActionLoop loop, int n)
    {
        for (int i = 0; i < n; i++)
        {
            await loop.Yield();
        }
    }

    /// <summary>A one-thread run queue of (continuation, state) that is also the yield's reusable source.</summary>
    private sealed class VtsLoop : IValueTaskSource
    {
        private (Action<object?> Callback, object? State)[] _items = new (Action<object?>, object?)[16];
        private int _head;
        private int _tail;
        private short _token;

        public ValueTask Yield() => new(this, _token);

        public ValueTaskSourceStatus GetStatus(short token) => ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            if (token != _token)
            {
                throw new InvalidOperationException("stale token");
            }

            if (_tail - _head == _items.Length)
            {
                Grow();
            }

            _items[_tail++ & (_items.Length - 1)] = (continuation, state);
        }

        public void GetResult(short token)
        {
            if (token != _token)
            {
                throw new InvalidOperationException("stale token");
            }

            _token++;
        }

        public void Run(Task main)
        {
            while (_head != _tail)
            {
                ref var slot = ref _items[_head++ & (_items.Length - 1)];
                var (callback, state) = slot;
                slot = default;
                callback(state);
            }

            main.GetAwaiter().GetResult();
        }

        private void Grow() => FloorRing.Grow(ref _items, ref _head, ref _tail);
    }

    /// <summary>Which of EioSharp's per-yield costs a <see cref="StepLoop{TPolicy}"/> adds (cumulative).</summary>
    private interface IStepPolicy
    {
        static abstract bool ItemWrites { get; }

        static abstract bool YieldChecks { get; }

        static abstract bool Rounds { get; }
    }

    private struct StepQueueOnly : IStepPolicy
    {
        public static bool ItemWrites => false;

        public static bool YieldChecks => false;

        public static bool Rounds => false;
    }

    private struct StepItemWrites : IStepPolicy
    {
        public static bool ItemWrites => true;

        public static bool YieldChecks => false;

        public static bool Rounds => false;
    }

    private struct StepYieldChecks : IStepPolicy
    {
        public static bool ItemWrites => true;

        public static bool YieldChecks => true;

        public static bool Rounds => false;
    }

    private struct StepRoundLoop : IStepPolicy
    {
        public static bool ItemWrites => true;

        public static bool YieldChecks => true;

        public static bool Rounds => true;
    }

    /// <summary>A stand-in for a fiber frame: a synchronization context (as EioSharp's frames are) with a cancel flag.</summary>
    private sealed class StepFrame : SynchronizationContext
    {
#pragma warning disable CS0649 // read as EioSharp reads it, never set: the stand-in is never cancelled
        public bool Cancelled;
#pragma warning restore CS0649
    }

    /// <summary>A stand-in for the poller (an interface call per round, as <c>Domain.RunLoop</c>'s <c>HasRegistrations</c>).</summary>
    private interface IStepPoller
    {
        bool HasRegistrations { get; }
    }

    private sealed class StepPoller : IStepPoller
    {
        public bool HasRegistrations => false;
    }

    /// <summary>The one-thread loop of the step variants: EioSharp's domain loop, its parts switched on by
    /// <typeparamref name="TPolicy"/> (a struct, so the JIT compiles each variant without the others' branches).</summary>
    private sealed class StepLoop<TPolicy> : IValueTaskSource
        where TPolicy : struct, IStepPolicy
    {
        [ThreadStatic]
        private static StepLoop<TPolicy>? t_current;

#pragma warning disable CS0649 // the stand-ins for tracing, the inbox flag and the timers are read as Domain reads them, never set
        private static volatile bool s_traceOn;

        private readonly Queue<(Action<object?> Callback, object? State, StepFrame? Frame)> _local = new();
        private readonly StepFrame _frame = new();
        private readonly IStepPoller _poller = new StepPoller();
        private StepFrame? _armed;
        private volatile StepFrame? _runningFrame;
        private long _currentItem;
        private long _itemsRun;
        private int _remotePosted;
        private int _timers;
#pragma warning restore CS0649
        private Exception? _crash;
        private short _token;

        public ValueTask Yield()
        {
            StepFrame frame = _frame;
            if (TPolicy.YieldChecks)
            {
                // FiberFrame.RequireInFiber: the current frame is the installed synchronization context.
                frame = SynchronizationContext.Current as StepFrame ?? throw new InvalidOperationException("not in a fiber");
                if (!ReferenceEquals(t_current, this))
                {
                    throw new InvalidOperationException("off the domain");
                }
            }

            if (!ReferenceEquals(_armed, frame))
            {
                _armed = frame;
            }

            return new ValueTask(this, ++_token);
        }

        public ValueTaskSourceStatus GetStatus(short token) => ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            var frame = _armed;
            if (token != _token || frame is null)
            {
                throw new InvalidOperationException("stale token");
            }

            if (TPolicy.YieldChecks)
            {
                if (s_traceOn)
                {
                    throw new InvalidOperationException("tracing");
                }

                if (!ReferenceEquals(t_current, this))
                {
                    throw new InvalidOperationException("off the domain");
                }
            }

            _local.Enqueue((continuation, state, frame));
        }

        public void GetResult(short token)
        {
            if (TPolicy.YieldChecks)
            {
                if (_runningFrame is { Cancelled: true })
                {
                    throw new OperationCanceledException();
                }
            }
        }

        public void Run(Func<Task> start)
        {
            var previous = SynchronizationContext.Current;
            t_current = this;
            SynchronizationContext.SetSynchronizationContext(_frame);
            Task main;
            try
            {
                main = start();
                if (TPolicy.Rounds)
                {
                    while (true)
                    {
                        RunRound();
                        if (_crash is not null)
                        {
                            throw _crash;
                        }

                        if (main.IsCompleted)
                        {
                            break;
                        }

                        if (_local.Count > 0 || _remotePosted != 0)
                        {
                            if (_poller.HasRegistrations)
                            {
                                throw new InvalidOperationException("no poller here");
                            }

                            continue;
                        }

                        break;
                    }
                }
                else
                {
                    while (_local.TryDequeue(out var item))
                    {
                        RunItem(item);
                    }
                }
            }
            finally
            {
                t_current = null;
                SynchronizationContext.SetSynchronizationContext(previous);
            }

            main.GetAwaiter().GetResult();
        }

        private void RunRound()
        {
            if (_remotePosted != 0)
            {
                throw new InvalidOperationException("no inbox here");
            }

            if (_timers != 0)
            {
                throw new InvalidOperationException("no timers here");
            }

            int n = _local.Count;
            if (n == 0)
            {
                return;
            }

            for (int i = 0; i < n && _local.TryDequeue(out var item); i++)
            {
                RunItem(item);
            }

            Volatile.Write(ref _currentItem, 0);
            _runningFrame = null;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void RunItem(in (Action<object?> Callback, object? State, StepFrame? Frame) item)
        {
            if (TPolicy.ItemWrites)
            {
                _runningFrame = item.Frame;
                SynchronizationContext.SetSynchronizationContext(item.Frame);
                Volatile.Write(ref _currentItem, ++_itemsRun);
                if (s_traceOn)
                {
                    throw new InvalidOperationException("tracing");
                }

                try
                {
                    item.Callback(item.State);
                }
                catch (Exception ex)
                {
                    _crash ??= ex;
                }
            }
            else
            {
                item.Callback(item.State);
            }
        }
    }

    /// <summary>The loop queues the source itself; its turn completes the core, which runs the continuation inline.</summary>
    private sealed class MrvtsLoop : IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> _core;
        private bool _queued;

        public ValueTask Yield() => new(this, _core.Version);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            _core.OnCompleted(continuation, state, token, flags);
            _queued = true;
        }

        public void GetResult(short token)
        {
            _core.GetResult(token);
            _core.Reset();
        }

        public void Run(Task main)
        {
            while (_queued)
            {
                _queued = false;
                _core.SetResult(true);
            }

            main.GetAwaiter().GetResult();
        }
    }

    /// <summary>A one-thread run queue of <see cref="Action"/>s, fed by a struct awaiter.</summary>
    private sealed class ActionLoop
    {
        private Action[] _items = new Action[16];
        private int _head;
        private int _tail;

        public YieldAwaitable Yield() => new(this);

        internal void Enqueue(Action continuation)
        {
            if (_tail - _head == _items.Length)
            {
                FloorRing.Grow(ref _items, ref _head, ref _tail);
            }

            _items[_tail++ & (_items.Length - 1)] = continuation;
        }

        public void Run(Task main)
        {
            while (_head != _tail)
            {
                ref var slot = ref _items[_head++ & (_items.Length - 1)];
                var action = slot;
                slot = null!;
                action();
            }

            main.GetAwaiter().GetResult();
        }
    }

    /// <summary>The awaitable and awaiter of <see cref="ActionLoop.Yield"/>: never complete, queue the continuation.</summary>
    private readonly struct YieldAwaitable(ActionLoop loop) : ICriticalNotifyCompletion
    {
        public YieldAwaitable GetAwaiter() => this;

        public bool IsCompleted => false;

        public void OnCompleted(Action continuation) => loop.Enqueue(continuation);

        public void UnsafeOnCompleted(Action continuation) => loop.Enqueue(continuation);

        public void GetResult()
        {
        }
    }
}
