using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.Net;

namespace EioSharp.Tests.Net;

public class NetSmokeTests
{
    private static async Task EchoAsync(StreamSocket conn, EndPoint peer)
    {
        var buf = new byte[4096];
        while (true)
        {
            int n = await conn.ReadAsync(buf);
            if (n == 0)
            {
                return;
            }

            await conn.WriteAsync(buf.AsMemory(0, n));
        }
    }

    [Fact]
    public void EchoServerWithGracefulStop()
    {
        var replies = EioMain.Run(async env =>
        {
            var got = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, new IPEndPoint(IPAddress.Loopback, 0));
                var (stop, stopper) = Promise.Create<bool>();
                Fiber.Fork(sw, () => listener.RunServerAsync(EchoAsync, ex => throw ex, maxConnections: 10,
                    domainManager: env.DomainManager, additionalDomains: 1, stop: stop));
                await Fiber.AllAsync(Enumerable.Range(0, 20).Select(i => (Func<Task>)(async () =>
                {
                    await Switch.RunAsync(async csw =>
                    {
                        var c = await env.Net.ConnectAsync(csw, listener.ListeningEndPoint);
                        var msg = Encoding.ASCII.GetBytes($"hello {i}\n");
                        await c.WriteAsync(msg);
                        var buf = new byte[64];
                        int total = 0;
                        while (total < msg.Length)
                        {
                            total += await c.ReadAsync(buf.AsMemory(total));
                        }

                        got.Add(Encoding.ASCII.GetString(buf, 0, total));
                    });
                })));
                stopper.Resolve(true);
            });
            return got;
        });
        Assert.Equal(20, replies.Count);
        Assert.Contains("hello 7\n", replies);
    }
    [Fact]
    public void ConnectedDatagramSocketSendsAndReportsRefused()
    {
        var error = EioMain.Run(async env =>
        {
            SocketError? refused = null;
            await Switch.RunAsync(async sw =>
            {
                var receiver = env.Net.OpenDatagram(sw, new IPEndPoint(IPAddress.Loopback, 0));
                var sender = env.Net.OpenDatagram(sw, new IPEndPoint(IPAddress.Loopback, 0));
                sender.Connect(receiver.LocalEndPoint!);
                await sender.SendAsync("hello"u8.ToArray());
                var buf = new byte[16];
                int n = await receiver.ReceiveAsync(buf);
                Assert.Equal("hello", Encoding.ASCII.GetString(buf, 0, n));
                receiver.Close();
                // Linux reports the ICMP "port unreachable" of an earlier datagram on a later send of a connected socket.
                for (int i = 0; i < 100 && refused is null; i++)
                {
                    try
                    {
                        await sender.SendAsync("again"u8.ToArray());
                    }
                    catch (NetException e)
                    {
                        refused = e.SocketError;
                    }

                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(10));
                }
            });
            return refused;
        });
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(SocketError.ConnectionRefused, error);
        }
    }
}
