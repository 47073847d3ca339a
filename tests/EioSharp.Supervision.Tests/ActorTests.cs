using EioSharp.Mock;
using EioSharp.Supervision;
using EioSharp.Time;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

public abstract record CounterMsg;

public sealed record Add(int N) : CounterMsg;

public sealed record Get(Reply<int> Reply) : CounterMsg;

public sealed record SlowGet(TimeSpan Delay, Reply<int> Reply) : CounterMsg;

public sealed record Crash(string Why) : CounterMsg;

public sealed record CrashDuringCall(Reply<int> Reply) : CounterMsg;

/// <summary>Actors: call, cast, call timeouts, full mailboxes, and supervised restarts with fresh state.</summary>
public class ActorTests
{
    private static Actor<int, CounterMsg> Counter(MonoClock clock, int capacity = 8) => new(
        "counter",
        clock,
        () =>
        {
            TraceLog.Line("counter: init");
            return Task.FromResult(0);
        },
        async (n, msg) =>
        {
            switch (msg)
            {
                case Add a:
                    return n + a.N;
                case Get g:
                    g.Reply.Send(n);
                    return n;
                case SlowGet s:
                    await clock.SleepAsync(s.Delay);
                    s.Reply.Send(n);
                    return n;
                case Crash c:
                    throw new InvalidOperationException(c.Why);
                case CrashDuringCall:
                    throw new InvalidOperationException("crash in call");
                default:
                    return n;
            }
        },
        capacity);

    [Fact]
    public void CallAndCast()
    {
        var t = MockMain.Trace(async env =>
        {
            var counter = Counter(env.MonoClock);
            await Switch.RunAsync(async sw =>
            {
                Fiber.ForkDaemon(sw, () => counter.RunAsync());
                counter.Cast(new Add(2));
                await counter.CastAsync(new Add(3));
                TraceLog.Line($"get: {await counter.CallAsync<int>(r => new Get(r), TimeSpan.FromSeconds(1))}");
            });
        });
        Expect("""
            +counter: init
            +get: 5

            """, t);
    }

    [Fact]
    public void CallTimesOut_AndALateReplyIsDropped()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var counter = Counter(clock);
            await Switch.RunAsync(async sw =>
            {
                Fiber.ForkDaemon(sw, () => counter.RunAsync());
                try
                {
                    await counter.CallAsync<int>(r => new SlowGet(TimeSpan.FromSeconds(5), r), TimeSpan.FromSeconds(1));
                }
                catch (TimeoutException e)
                {
                    TraceLog.Line($"{e.GetType().Name} at {T(clock)}: {e.Message}");
                }

                TraceLog.Line($"next call: {await counter.CallAsync<int>(r => new Get(r), TimeSpan.FromSeconds(10))} at {T(clock)}");
            });
        });
        Expect("""
            +counter: init
            +TimeoutException at t=1: Actor 'counter' did not reply within 1s.
            +next call: 0 at t=5

            """, t);
    }

    [Fact]
    public void Cast_OnAFullMailbox_FailsAtOnce_WhileCastAsyncWaits()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var counter = Counter(clock, capacity: 2);
            await Switch.RunAsync(async sw =>
            {
                counter.Cast(new Add(1));
                counter.Cast(new Add(1));
                TraceLog.Line($"try: {counter.TryCast(new Add(1))}");
                try
                {
                    counter.Cast(new Add(1));
                }
                catch (MailboxFullException e)
                {
                    TraceLog.Line(e.Message);
                }

                Fiber.Fork(sw, async () =>
                {
                    await counter.CastAsync(new Add(10));
                    TraceLog.Line($"CastAsync went through at {T(clock)}");
                });
                await clock.SleepAsync(TimeSpan.FromSeconds(1));
                TraceLog.Line($"starting actor at {T(clock)}");
                Fiber.ForkDaemon(sw, () => counter.RunAsync());
                TraceLog.Line($"get: {await counter.CallAsync<int>(r => new Get(r), TimeSpan.FromSeconds(1))}");
            });
        });
        Expect("""
            +try: False
            +The mailbox of actor 'counter' is full (2 messages).
            +starting actor at t=1
            +counter: init
            +CastAsync went through at t=1
            +get: 12

            """, t);
    }

    [Fact]
    public void SupervisedActor_RestartsWithFreshState_AndTheCallInFlightGetsActorFailed()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var counter = Counter(clock);
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, counter.ToChildSpec()) { OnReport = Trace, MaxRestarts = 3 };
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, clock);
                counter.Cast(new Add(5));
                TraceLog.Line($"get: {await counter.CallAsync<int>(r => new Get(r), TimeSpan.FromSeconds(1))}");
                counter.Cast(new Crash("poison"));
                TraceLog.Line($"get after crash: {await counter.CallAsync<int>(r => new Get(r), TimeSpan.FromSeconds(1))}");
                try
                {
                    await counter.CallAsync<int>(r => new CrashDuringCall(r), TimeSpan.FromSeconds(1));
                }
                catch (ActorFailedException e)
                {
                    TraceLog.Line(e.Message);
                }

                await sup.CrashChildAsync("counter", new TimeoutException("injected"));
                counter.Cast(new Add(7));
                TraceLog.Line($"get after injected crash: {await counter.CallAsync<int>(r => new Get(r), TimeSpan.FromSeconds(1))}");
                await sup.StopAsync();
            });
        });
        Expect("""
            +counter: init
            +sup: counter started
            +get: 5
            +sup: counter exited (failed: InvalidOperationException: poison)
            +sup: restarting counter
            +counter: init
            +sup: counter started
            +get after crash: 0
            +Actor 'counter' ended while handling the call: InvalidOperationException: crash in call
            +sup: counter exited (failed: InvalidOperationException: crash in call)
            +sup: restarting counter
            +counter: init
            +sup: counter started
            +sup: counter exited (failed: TimeoutException: injected)
            +sup: restarting counter
            +counter: init
            +sup: counter started
            +get after injected crash: 7
            +sup: counter stopped (cancelled)

            """, t);
    }
}
