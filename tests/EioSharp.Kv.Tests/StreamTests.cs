using System.Buffers;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class StreamTests
{
    [Fact]
    public void Scratch()
    {
        var h = new StoreHarness();
        h.Run("XADD", "k4", "1", "a", "b");
        Assert.Equal("-ERR syntax error, LIMIT cannot be used without the special ~ option\r\n", h.Run("XTRIM", "k4", "MAXLEN", "=", "277", "LIMIT", "88"));
        Assert.StartsWith("-NOGROUP", h.Run("XREADGROUP", "GROUP", "g0", "c2", "NOACK", "STREAMS", "k7", ">"));
        h.Run("SET", "str", "x");
        Assert.StartsWith("-WRONGTYPE", h.Run("XREADGROUP", "GROUP", "g0", "c2", "NOACK", "STREAMS", "str", ">"));
    }
}
