using EioSharp.IO;
using EioSharp.Mock;
using static EioSharp.Mock.MockAction;

namespace EioSharp.Tests.IO;

/// <summary>Eio_mock.Flow and the standard streams of the mock environment.</summary>
public class MockFlowTests
{
    [Fact]
    public void ScriptedReadsWritesAndFailuresAreTraced()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow("conn");
            flow.OnRead(ReturnString("hello"), Raise(new IOException("reset by peer")));
            flow.OnWrite(Ok(), Raise(new IOException("broken pipe")));
            var buf = new byte[3];
            int n = await flow.ReadAsync(buf);
            TraceLog.Line($"got {n}");
            n = await flow.ReadAsync(buf);
            TraceLog.Line($"got {n}");
            try
            {
                await flow.ReadAsync(buf);
            }
            catch (IOException ex)
            {
                TraceLog.Line("read failed: " + ex.Message);
            }

            TraceLog.Line($"then end of input: {await flow.ReadAsync(buf)}");
            await flow.WriteStringAsync("a\tb\"\u00e9");
            await flow.ShutdownAsync(ShutdownCommand.Send);
            try
            {
                await flow.WriteStringAsync("more");
            }
            catch (IOException ex)
            {
                TraceLog.Line("write failed: " + ex.Message);
            }

            flow.Close();
            flow.Close();
        });
        Assert.Equal("""
            +conn: read "hel"
            +got 3
            +conn: read "lo"
            +got 2
            +read failed: reset by peer
            +then end of input: 0
            +conn: wrote "a\tb\"\195\169"
            +conn: shutdown send
            +write failed: broken pipe
            +conn: closed

            """, t);
    }

    [Fact]
    public void ReadsCanWaitForAPromiseAndYield()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            var (p, r) = Promise.Create<string>();
            flow.OnRead(AwaitPromise(p), YieldThen(Return("after yield")));
            await Fiber.BothAsync(
                async () =>
                {
                    var reader = new BufferedReader(flow, 64);
                    TraceLog.Line("line: " + await reader.ReadLineAsync());
                },
                () =>
                {
                    TraceLog.Line("resolving");
                    r.Resolve("from promise ");
                    return Task.CompletedTask;
                });
        });
        Assert.Equal("""
            +resolving
            +flow: read "from promise "
            +flow: read "after yield"
            +line: from promise after yield

            """, t);
    }

    [Fact]
    public void ReadsAreCancellableWhileWaiting()
    {
        var t = MockMain.Trace(async env =>
        {
            var flow = new MockFlow();
            var (p, _) = Promise.Create<string>();
            flow.OnRead(AwaitPromise(p));
            await Fiber.FirstAsync(
                async () => { await flow.ReadAsync(new byte[4]); TraceLog.Line("read"); },
                async () => { await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1)); TraceLog.Line("timeout"); });
        });
        Assert.Equal("""
            +timeout

            """, t);
    }

    [Fact]
    public void MockStdoutAndStderrAreTracedAndStdinIsEmpty()
    {
        var t = MockMain.Trace(async env =>
        {
            await env.Stdout.WriteStringAsync("hello\n");
            await env.Stderr.WriteStringAsync("oops\n");
            TraceLog.Line($"stdin read {await env.Stdin.ReadAsync(new byte[8])}");
        });
        Assert.Equal("""
            +stdout: wrote "hello\n"
            +stderr: wrote "oops\n"
            +stdin read 0

            """, t);
    }

    [Fact]
    public void SecureRandomFillsTheBuffer()
    {
        static byte[] Read(Func<Func<Stdenv, Task<byte[]>>, byte[]> run) => run(async env =>
        {
            var buf = new byte[32];
            await env.SecureRandom.ReadExactlyAsync(buf);
            return buf;
        });

        var real = Read(f => EioMain.Run(f));
        Assert.Contains(real, b => b != 0);
        Assert.Equal(Read(f => MockMain.Run(f)), Read(f => MockMain.Run(f)));
    }
}
