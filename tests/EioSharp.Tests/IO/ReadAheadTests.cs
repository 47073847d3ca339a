using System.Net;
using System.Text;
using EioSharp.IO;
using EioSharp.Net;
using EioSharp.Sync;

namespace EioSharp.Tests.IO;

/// <summary><see cref="ReadAhead"/> over loopback TCP on the Portable backend; the subclasses run the same on epoll and
/// io_uring (each falls back where the kernel refuses it). No timing: every step waits for an event.</summary>
public class ReadAheadTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    /// <summary>The backend the tests run on.</summary>
    protected virtual EioBackend Backend => EioBackend.Portable;

    // Runs body(server end, client end) with a connected pair in one switch.
    private void WithPair(Func<Switch, StreamSocket, StreamSocket, Task> body) =>
        EioMain.Run<bool>(Backend, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var accepted = Fiber.ForkPromise(sw, async () => (await listener.AcceptAsync(sw)).Item1);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var server = await accepted.AwaitAsync();
                await body(sw, server, client);
                client.Close();
                server.Close();
            });
            return true;
        });

    [Fact]
    public void AReadThatCompletesWhileTheFiberWaitsElsewhereCallsTheCallbackAndKeepsItsBytes()
    {
        WithPair(async (sw, server, client) =>
        {
            var events = new AsyncQueue<string>(AsyncQueue<string>.Unbounded);
            var ra = new ReadAhead(server, () => events.TryAdd("read"));
            var buffer = new byte[64];
            Assert.False(ra.Start(buffer));
            Assert.True(ra.IsPending);
            Assert.False(ra.IsCompleted);
            Assert.False(ra.TryTake(out _));
            await client.WriteAsync("hello"u8.ToArray());
            Assert.Equal("read", await events.TakeAsync()); // the fiber waited on its queue, not on the read
            Assert.True(ra.IsCompleted);
            Assert.True(ra.TryTake(out int n));
            Assert.Equal("hello", Encoding.ASCII.GetString(buffer, 0, n));
            Assert.False(ra.IsPending);

            // The end of the flow is a read of 0.
            Assert.False(ra.Start(buffer));
            await client.ShutdownAsync(ShutdownCommand.Send);
            Assert.Equal("read", await events.TakeAsync());
            Assert.True(ra.TryTake(out n));
            Assert.Equal(0, n);
        });
    }

    [Fact]
    public void TakeAsyncIsResumedByTheReadInTheStartingFrameWithoutTheCallback()
    {
        WithPair(async (sw, server, client) =>
        {
            int callbacks = 0;
            var ra = new ReadAhead(server, () => callbacks++);
            var buffer = new byte[64];
            var frame = FiberFrame.Current;
            var echo = Fiber.ForkPromise(sw, async () =>
            {
                var b = new byte[64];
                int total = 0;
                for (int i = 0; i < 100; i++)
                {
                    await client.WriteAsync(Encoding.ASCII.GetBytes($"m{i};"));
                    total += await client.ReadAsync(b); // the reply: the server's next read is started before it replies
                }

                return total;
            });
            for (int i = 0; i < 100; i++)
            {
                if (!ra.IsPending)
                {
                    ra.Start(buffer);
                }

                int n = await ra.TakeAsync();
                Assert.Same(frame, FiberFrame.Current); // the code after the await runs as the starting fiber's
                Assert.Equal($"m{i};", Encoding.ASCII.GetString(buffer, 0, n));
                ra.Start(buffer); // the next read in flight before the reply goes
                await server.WriteAsync("k"u8.ToArray());
            }

            Assert.Equal(100, await echo.AwaitAsync());
            Assert.Equal(0, callbacks);
            ra.Cancel();
        });
    }

    [Fact]
    public void CancelEndsAReadInFlightAndAReadStartedAfterItLosesNothing()
    {
        WithPair(async (sw, server, client) =>
        {
            var events = new AsyncQueue<int>(AsyncQueue<int>.Unbounded);
            var ra = new ReadAhead(server, () => events.TryAdd(1));
            var buffer = new byte[64];
            Assert.False(ra.Start(buffer));
            ra.Cancel();
            await events.TakeAsync(); // the cancelled read's completion still arrives
            Assert.True(ra.IsCompleted);
            CancelledException? error = null;
            try
            {
                ra.TryTake(out _); // nothing was sent, so the read cannot have won the race with bytes
            }
            catch (CancelledException e)
            {
                error = e;
            }

            Assert.NotNull(error);

            Assert.False(ra.IsPending);
            Assert.False(ra.Start(buffer)); // a new context: the cancelled one is not reused
            await client.WriteAsync("after"u8.ToArray());
            int got = await ra.TakeAsync();
            Assert.Equal("after", Encoding.ASCII.GetString(buffer, 0, got));
        });
    }

    [Fact]
    public void CancellingTheStartingFibersContextCancelsTheReadAndItsTake()
    {
        WithPair(async (sw, server, client) =>
        {
            var ra = new ReadAhead(server);
            var buffer = new byte[64];
            bool cancelled = false;
            try
            {
                await Cancel.SubAsync(async ctx =>
                {
                    Assert.False(ra.Start(buffer));
                    var take = ra.TakeAsync();
                    Fiber.Fork(sw, () =>
                    {
                        ctx.Cancel(new InvalidOperationException("stop"));
                        return Task.CompletedTask;
                    });
                    await take;
                });
            }
            catch (CancelledException)
            {
                cancelled = true;
            }

            Assert.True(cancelled);
            Assert.False(ra.IsPending);
            await client.WriteAsync("x"u8.ToArray()); // the socket still works for a new read
            ra.Start(buffer); // (may complete at once: the byte is there already)
            Assert.Equal(1, await ra.TakeAsync());
        });
    }

    [Fact]
    public void MisuseIsRefused()
    {
        WithPair(async (sw, server, client) =>
        {
            var ra = new ReadAhead(server);
            Assert.Throws<InvalidOperationException>(() => ra.TakeAsync());
            var buffer = new byte[8];
            ra.Start(buffer);
            Assert.Throws<InvalidOperationException>(() => ra.Start(buffer));
            var take = ra.TakeAsync();
            await client.WriteAsync("z"u8.ToArray());
            Assert.Equal(1, await take);
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await take);
        });
    }
}

/// <summary><see cref="ReadAheadTests"/> on the epoll backend.</summary>
public class ReadAheadEpollTests : ReadAheadTests
{
    protected override EioBackend Backend => EioBackend.Epoll;
}

/// <summary><see cref="ReadAheadTests"/> on the io_uring backend.</summary>
public class ReadAheadUringTests : ReadAheadTests
{
    protected override EioBackend Backend => EioBackend.Uring;
}
