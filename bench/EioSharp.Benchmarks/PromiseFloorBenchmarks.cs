using System.Threading.Tasks.Sources;
using BenchmarkDotNet.Attributes;

namespace EioSharp.Benchmarks;

/// <summary>
/// The floor for <see cref="CorePromisePingPong"/> and <see cref="CoreQueue"/> with capacity 0 (issue 20, h163): the same
/// ping-pong and rendezvous written with no EioSharp in them, two async methods on a one-thread loop of its own (a ring of
/// (continuation, state), as <see cref="YieldFloor"/>'s (a)), each suspension a <see cref="ValueTask{TResult}"/> over a
/// reusable <see cref="IValueTaskSource{TResult}"/> waiter with a version token, taken from a free list and put back when
/// its result is read (EioSharp's shape without its cancellation, domains, tracing and locks).
/// <list type="bullet">
/// <item><see cref="PromiseSelfSource"/>: a promise is its own source (one object per promise, one awaiter at most).</item>
/// <item><see cref="PromisePooledWaiter"/>: a promise holds a pooled waiter (EioSharp's shape: a promise object and a
/// resolver object per create, the waiter reused).</item>
/// <item><see cref="Rendezvous"/>: a capacity-0 queue of one taker slot and one adder slot, pooled waiters.</item>
/// </list>
/// </summary>
public class PromiseFloor : CoreBench
{
    private const int Rounds = 20_000;
    private const int Items = 100_000;

    /// <summary>A promise that is its own value-task source.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Rounds)]
    public void PromiseSelfSource()
    {
        var loop = new FloorLoop();
        var s = new SelfState(loop);
        var a = SelfA(s);
        var b = SelfB(s);
        loop.Run();
        a.GetAwaiter().GetResult();
        b.GetAwaiter().GetResult();
    }

    /// <summary>A promise (and a resolver) per create, each await on a pooled waiter.</summary>
    [Benchmark(OperationsPerInvoke = Rounds)]
    public void PromisePooledWaiter()
    {
        var loop = new FloorLoop();
        var s = new PooledState(loop);
        var a = PooledA(s);
        var b = PooledB(s);
        loop.Run();
        a.GetAwaiter().GetResult();
        b.GetAwaiter().GetResult();
    }

    /// <summary>A capacity-0 queue: an adder waits until a taker has its item.</summary>
    [Benchmark(OperationsPerInvoke = Items)]
    public void Rendezvous()
    {
        var loop = new FloorLoop();
        var q = new FloorRendezvous(loop);
        long sum = 0;
        var a = Producer(q);
        var b = Consumer(q, v => sum += v);
        loop.Run();
        a.GetAwaiter().GetResult();
        b.GetAwaiter().GetResult();
    }

    private static async Task SelfA(SelfState s)
    {
        for (int i = 0; i < Rounds; i++)
        {
            var myPong = s.Pong;
            s.Ping.Resolve(i);
            await myPong.AwaitAsync();
        }
    }

    private static async Task SelfB(SelfState s)
    {
        for (int i = 0; i < Rounds; i++)
        {
            var myPing = s.Ping;
            await myPing.AwaitAsync();
            s.Ping = new SelfPromise(s.Loop);
            var p = s.Pong;
            s.Pong = new SelfPromise(s.Loop);
            p.Resolve(i);
        }
    }

    private static async Task PooledA(PooledState s)
    {
        for (int i = 0; i < Rounds; i++)
        {
            var myPong = s.Pong.Promise;
            s.Ping.Resolver.Resolve(i);
            await myPong.AwaitAsync();
        }
    }

    private static async Task PooledB(PooledState s)
    {
        for (int i = 0; i < Rounds; i++)
        {
            var myPing = s.Ping.Promise;
            await myPing.AwaitAsync();
            s.Ping = PooledPromise.Create(s.Loop);
            var p = s.Pong.Resolver;
            s.Pong = PooledPromise.Create(s.Loop);
            p.Resolve(i);
        }
    }

    private static async Task Producer(FloorRendezvous q)
    {
        for (int i = 0; i < Items; i++)
        {
            await q.AddAsync(i);
        }
    }

    private static async Task Consumer(FloorRendezvous q, Action<int> add)
    {
        long sum = 0;
        for (int i = 0; i < Items; i++)
        {
            sum += await q.TakeAsync();
        }

        add((int)sum);
    }

    /// <summary>The run queue: a ring of (continuation, state), run by the thread that calls <see cref="Run"/>.</summary>
    private sealed class FloorLoop
    {
        private (Action<object?> Callback, object? State)[] _items = new (Action<object?>, object?)[16];
        private int _head;
        private int _tail;
        internal FloorWaiter? Free;

        public void Enqueue(Action<object?> callback, object? state)
        {
            if (_tail - _head == _items.Length)
            {
                Grow();
            }

            _items[_tail++ & (_items.Length - 1)] = (callback, state);
        }

        public FloorWaiter Rent()
        {
            var w = Free;
            if (w is null)
            {
                return new FloorWaiter(this);
            }

            Free = w.NextFree;
            w.NextFree = null;
            return w;
        }

        public void Run()
        {
            while (_head != _tail)
            {
                ref var slot = ref _items[_head++ & (_items.Length - 1)];
                var (callback, state) = slot;
                slot = default;
                callback(state);
            }
        }

        private void Grow() => FloorRing.Grow(ref _items, ref _head, ref _tail);
    }

    /// <summary>A reusable waiter: a version token per use, back on the loop's free list once its result is read.</summary>
    private sealed class FloorWaiter(FloorLoop loop) : IValueTaskSource<int>, IValueTaskSource
    {
        private static readonly Action<object?> s_done = static _ => { };
        private short _version;
        private int _result;
        private Action<object?>? _continuation;
        private object? _state;
        internal FloorWaiter? NextFree;

        public ValueTask<int> Task => new(this, _version);

        public ValueTask VoidTask => new(this, _version);

        public void Complete(int value)
        {
            _result = value;
            var c = _continuation;
            _continuation = s_done;
            if (c is not null)
            {
                loop.Enqueue(c, _state);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token)
        {
            Check(token);
            return ReferenceEquals(_continuation, s_done) ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;
        }

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            Check(token);
            _state = state;
            if (ReferenceEquals(_continuation, s_done))
            {
                loop.Enqueue(continuation, state);
                return;
            }

            _continuation = continuation;
        }

        public int GetResult(short token)
        {
            Check(token);
            int r = _result;
            _version++;
            _continuation = null;
            _state = null;
            NextFree = loop.Free;
            loop.Free = this;
            return r;
        }

        void IValueTaskSource.GetResult(short token) => GetResult(token);

        private void Check(short token)
        {
            if (token != _version)
            {
                throw new InvalidOperationException("stale token");
            }
        }
    }

    private sealed class SelfState(FloorLoop loop)
    {
        public FloorLoop Loop { get; } = loop;

        public SelfPromise Ping { get; set; } = new(loop);

        public SelfPromise Pong { get; set; } = new(loop);
    }

    /// <summary>A promise that is its own source (awaited once).</summary>
    private sealed class SelfPromise(FloorLoop loop) : IValueTaskSource<int>
    {
        private int _value;
        private bool _resolved;
        private Action<object?>? _continuation;
        private object? _state;

        public ValueTask<int> AwaitAsync() => _resolved ? new(_value) : new(this, 0);

        public void Resolve(int value)
        {
            _value = value;
            _resolved = true;
            if (_continuation is { } c)
            {
                loop.Enqueue(c, _state);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _resolved ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            _continuation = continuation;
            _state = state;
        }

        public int GetResult(short token) => _value;
    }

    private sealed class PooledState(FloorLoop loop)
    {
        public FloorLoop Loop { get; } = loop;

        public (PooledPromise Promise, PooledResolver Resolver) Ping { get; set; } = PooledPromise.Create(loop);

        public (PooledPromise Promise, PooledResolver Resolver) Pong { get; set; } = PooledPromise.Create(loop);
    }

    /// <summary>A promise whose awaiter suspends on a pooled waiter.</summary>
    private sealed class PooledPromise(FloorLoop loop)
    {
        private int _value;
        private bool _resolved;
        private FloorWaiter? _waiter;

        public static (PooledPromise, PooledResolver) Create(FloorLoop loop)
        {
            var p = new PooledPromise(loop);
            return (p, new PooledResolver(p));
        }

        public ValueTask<int> AwaitAsync()
        {
            if (_resolved)
            {
                return new(_value);
            }

            var w = loop.Rent();
            _waiter = w;
            return w.Task;
        }

        public void Resolve(int value)
        {
            _value = value;
            _resolved = true;
            if (_waiter is { } w)
            {
                _waiter = null;
                w.Complete(value);
            }
        }
    }

    private sealed class PooledResolver(PooledPromise promise)
    {
        public void Resolve(int value) => promise.Resolve(value);
    }

    /// <summary>A capacity-0 queue with one waiting taker or one waiting adder at a time.</summary>
    private sealed class FloorRendezvous(FloorLoop loop)
    {
        private FloorWaiter? _taker;
        private FloorWaiter? _adder;
        private int _adderItem;

        public ValueTask AddAsync(int item)
        {
            if (_taker is { } t)
            {
                _taker = null;
                t.Complete(item);
                return ValueTask.CompletedTask;
            }

            var w = loop.Rent();
            _adder = w;
            _adderItem = item;
            return w.VoidTask;
        }

        public ValueTask<int> TakeAsync()
        {
            if (_adder is { } a)
            {
                _adder = null;
                int item = _adderItem;
                a.Complete(0);
                return new(item);
            }

            var w = loop.Rent();
            _taker = w;
            return w.Task;
        }
    }
}
