using System.Text;
using EioSharp.Net;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="StreamSocket.TryWrite"/> (session 27, h164, issue 12): all of the bytes without suspending, or none. On
/// io_uring with write-behind sends it starts a write-behind send when nothing is in flight; everywhere else, and while a
/// send is in flight or for more than a write-behind buffer, it writes nothing and returns false, and the bytes written
/// afterwards arrive in order. In the FdCount collection as the other io_uring socket tests.
/// </summary>
[Collection("FdCount")]
public class StreamSocketTryWriteTests
{
    private static async Task<string> ReadAsync(StreamSocket s, int count)
    {
        var all = new MemoryStream();
        var buf = new byte[1024];
        while (all.Length < count)
        {
            int n = await s.ReadAsync(buf);
            if (n == 0)
            {
                break;
            }

            all.Write(buf, 0, n);
        }

        return Encoding.ASCII.GetString(all.ToArray());
    }

    [Fact]
    public void OnIoUringWithWriteBehindTheBytesGoWithoutSuspendingOneSendAtATime()
    {
        var (first, whileInFlight, afterFlush, tooLarge, got) = RunWriteBehind(async env =>
        {
            (bool, bool, bool, bool, string) result = default;
            await Switch.RunAsync(async sw =>
            {
                var (client, server) = await PairAsync(env, sw);
                bool first = server.TryWrite("ab"u8);
                bool whileInFlight = server.TryWrite("XX"u8); // the first send is not confirmed before the next entry
                await server.FlushAsync();
                bool afterFlush = server.TryWrite("cd"u8);
                await server.FlushAsync();
                bool tooLarge = server.TryWrite(new byte[64 * 1024 + 1]);
                await server.WriteAsync("ef"u8.ToArray());
                result = (first, whileInFlight, afterFlush, tooLarge, await ReadAsync(client, 6));
            });
            return result;
        });
        Assert.True(first);
        Assert.False(whileInFlight);
        Assert.True(afterFlush);
        Assert.False(tooLarge);
        Assert.Equal("abcdef", got);
    }

    [Theory]
    [InlineData(EioBackend.Uring)] // write-behind off (the library's default)
    [InlineData(EioBackend.Epoll)]
    [InlineData(EioBackend.Portable)]
    public void WithoutWriteBehindNothingIsWrittenAndLaterWritesAreWhole(EioBackend backend)
    {
        var (tried, got) = NetConformanceTests.RunOn(backend, async env =>
        {
            (bool, string) result = default;
            await Switch.RunAsync(async sw =>
            {
                var (client, server) = await PairAsync(env, sw);
                bool tried = server.TryWrite("no"u8);
                await server.WriteAsync("yes"u8.ToArray());
                result = (tried, await ReadAsync(client, 3));
            });
            return result;
        });
        Assert.False(tried);
        Assert.Equal("yes", got);
    }

    [Fact]
    public void AnEmptyWriteIsAlwaysTaken()
    {
        bool taken = RunWriteBehind(async env =>
        {
            bool result = false;
            await Switch.RunAsync(async sw =>
            {
                var (_, server) = await PairAsync(env, sw);
                result = server.TryWrite(ReadOnlySpan<byte>.Empty);
            });
            return result;
        });
        Assert.True(taken);
    }
}
