using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>HELLO changes the protocol for the commands after it, not for those pipelined before it in the same read.</summary>
public sealed class ProtocolSwitchTests
{
    [Fact]
    public void Hello_in_a_pipeline_applies_only_to_later_commands()
    {
        using var server = KvServerProcess.Start();
        using var c = new RespConnection(server.Port);
        c.Send([.. RespConnection.Encode(["GET", "missing"]), .. RespConnection.Encode(["HELLO", "3"]), .. RespConnection.Encode(["GET", "missing"]),
            .. RespConnection.Encode(["HELLO", "2"]), .. RespConnection.Encode(["GET", "missing"])]);
        Assert.Equal("$nil", c.Read().ToString()); // RESP2 null bulk ($-1)
        Assert.Equal('%', c.Read().Kind); // HELLO 3 answers with a map
        Assert.Equal("_nil", c.Read().ToString()); // RESP3 null
        Assert.Equal('*', c.Read().Kind); // HELLO 2 answers with a flat array
        Assert.Equal("$nil", c.Read().ToString());
    }
}
