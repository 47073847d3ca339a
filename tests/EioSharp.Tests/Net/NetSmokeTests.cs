using System.Net;
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
}
