using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Issue 13: when the supervisor restarts the store owner (DEBUG CRASH-STORE), the new owner replays the AOF on a
/// system thread and clients get -LOADING meanwhile (INFO loading:1), as at start; then the data is served again.</summary>
public sealed class RestartLoadingTests
{
    [Fact]
    public void Clients_get_loading_while_a_restarted_store_owner_replays_the_aof()
    {
        using var dir = new TempDir();
        // The replay (at start and at each restart) is delayed by 1.5 s (EIOSHARP_KV_TEST_LOAD_DELAY_MS).
        using var server = KvServerProcess.StartLoading(dir.DataDir, TimeSpan.FromSeconds(1.5), "--enable-debug-command", "yes");
        using var c = new RespConnection(server.Port);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string reply;
        while ((reply = c.Call("SET", "k", "v").ToString()) != "+OK" && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Equal("+OK", reply);

        Assert.Equal("+OK", c.Call("DEBUG", "CRASH-STORE").ToString());
        // INFO is answered on the connection (never queued behind the store): wait until it says loading, then a data
        // command on a fresh connection gets -LOADING (a command queued before the restart began waits for the new owner).
        using var p = new RespConnection(server.Port);
        deadline = DateTime.UtcNow.AddSeconds(30);
        bool loading = false;
        while (!(loading = p.Call("INFO", "persistence").Text!.Contains("loading:1\r\n", StringComparison.Ordinal)) && DateTime.UtcNow < deadline) Thread.Sleep(10);
        Assert.True(loading, "INFO never showed loading:1 after the crash");
        Assert.Equal("-LOADING Redis is loading the dataset in memory", p.Call("GET", "k").ToString());
        Assert.Equal("-LOADING Redis is loading the dataset in memory", p.Call("SET", "k", "w").ToString());
        deadline = DateTime.UtcNow.AddSeconds(30);
        while ((reply = p.Call("GET", "k").ToString()) != "$\"v\"" && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.Equal("$\"v\"", reply);
        Assert.True(server.WaitForLog("Store owner restarted", TimeSpan.FromSeconds(5)), server.Log);
        Assert.Equal(0, server.Terminate());
    }
}
