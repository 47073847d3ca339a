using System.Net;
using System.Text;
using EioSharp.Net;

namespace EioSharp.Tests.Net;

/// <summary>All of <see cref="NetTests"/> on the epoll backend, plus tests of its own wait/cancel/close paths.</summary>
public class NetEpollTests : NetTests
{
    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 0);

    protected override EioBackend Backend => EioBackend.Epoll;

    [Fact]
    public void TheBackendReportsEpoll()
    {
        string backend = RunEio(env => Task.FromResult(env.Backend));
        Assert.Equal(OperatingSystem.IsLinux() ? "epoll" : "portable", backend);
    }

    [Fact]
    public void CancellingAPendingReadLeavesNoStaleWaiterAndTheNextReadWorks()
    {
        var outcome = RunEio(async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                var buf = new byte[16];
                try
                {
                    await Switch.RunAsync(async inner =>
                    {
                        Fiber.Fork(inner, async () => { await server.ReadAsync(buf); log.Add("read returned"); });
                        await Fiber.YieldAsync();
                        inner.Fail(new OperationCanceledException("stop"));
                    });
                }
                catch (OperationCanceledException)
                {
                    log.Add("cancelled");
                }

                // The cancelled read must not hold the reader slot nor steal this data.
                await client.WriteAsync("after"u8.ToArray());
                int n = await server.ReadAsync(buf);
                log.Add(Encoding.ASCII.GetString(buf, 0, n));

                // Again, many times: each cancelled wait clears its slot.
                for (int i = 0; i < 100; i++)
                {
                    await Assert.ThrowsAsync<TimeoutException>(() => env.MonoClock.WithTimeoutAsync(TimeSpan.FromMilliseconds(1), async () => await server.ReadAsync(buf)));
                }

                await client.WriteAsync("again"u8.ToArray());
                n = await server.ReadAsync(buf);
                log.Add(Encoding.ASCII.GetString(buf, 0, n));
            });
            return string.Join(",", log);
        });
        Assert.Equal("cancelled,after,again", outcome);
    }

    [Fact]
    public void ClosingUnderAReadOnTheSameDomainKeepsTheFdUntilTheReadFinishes()
    {
        var outcome = RunEio(async env =>
        {
            string result = "";
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                await Fiber.BothAsync(
                    async () =>
                    {
                        var buf = new byte[16];
                        int n = await server.ReadAsync(buf);
                        result = Encoding.ASCII.GetString(buf, 0, n);
                    },
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        server.Close();
                        server.Close(); // idempotent (S29)
                        Assert.True(server.IsClosed);
                        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await server.ReadAsync(new byte[1]));
                        await client.WriteAsync("late"u8.ToArray());
                    });
            });
            return result;
        });
        Assert.Equal("late", outcome);
    }

    [Fact]
    public void LargeWritesWaitForTheSendBufferAndArriveIntact()
    {
        var (sent, received) = RunEio(async env =>
        {
            long total = 0;
            var data = new byte[8 << 20];
            new Random(1).NextBytes(data);
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                await Fiber.BothAsync(
                    async () =>
                    {
                        await client.WriteAsync(data);
                        await client.ShutdownAsync(EioSharp.IO.ShutdownCommand.Send);
                    },
                    async () =>
                    {
                        var buf = new byte[65536];
                        int n;
                        while ((n = await server.ReadAsync(buf)) > 0)
                        {
                            Assert.True(buf.AsSpan(0, n).SequenceEqual(data.AsSpan((int)total, n)));
                            total += n;
                        }
                    });
            });
            return (data.Length, total);
        });
        Assert.Equal(sent, received);
    }
}
