using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Issue 13: while the AOF cannot be fsynced (DEBUG FAIL-FSYNC under everysec), a transaction queued before the
/// failure is aborted at EXEC with the disk error as the reason (Redis 7.0's execCommandAbort), a read-only one runs, and
/// Lua scripts get the error on their first write (a script with flags allowing writes is refused before it runs).</summary>
public sealed class MisconfTransactionTests
{
    private const string Misconf = "MISCONF Errors writing to the AOF file: Input/output error";

    [Fact]
    public void Exec_and_scripts_during_a_disk_error_answer_as_redis()
    {
        using var server = KvServerProcess.Start("--appendfsync", "everysec", "--enable-debug-command", "yes");
        using var c = new RespConnection(server.Port);
        using var tx = new RespConnection(server.Port);
        using var ro = new RespConnection(server.Port);
        Assert.Equal("+OK", c.Call("SET", "x", "1").ToString());
        Assert.Equal("+OK", tx.Call("MULTI").ToString());
        Assert.Equal("+QUEUED", tx.Call("SET", "t", "1").ToString());
        Assert.Equal("+OK", ro.Call("MULTI").ToString());
        Assert.Equal("+QUEUED", ro.Call("GET", "x").ToString());
        // EVAL and FUNCTION LIST are not write commands (Redis 7.0.15's COMMAND INFO): a script without a shebang is
        // decided when it runs, so the transaction is not aborted.
        Assert.Equal("+QUEUED", ro.Call("EVAL", "return redis.call('get','x')", "0").ToString());
        Assert.Equal("+QUEUED", ro.Call("FUNCTION", "LIST").ToString());

        Assert.Equal("+OK", c.Call("DEBUG", "FAIL-FSYNC", "1000").ToString());
        Assert.Equal("+OK", c.Call("SET", "before", "1").ToString()); // makes the file dirty: the next background fsync fails
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string reply = "";
        while ((reply = c.Call("SET", "k", "v").ToString()) == "+OK" && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Equal("-" + Misconf, reply);

        Assert.Equal("-EXECABORT Transaction discarded because of: " + Misconf, tx.Call("EXEC").ToString());
        Assert.Equal("-ERR EXEC without MULTI", tx.Call("EXEC").ToString()); // discarded
        Assert.Equal("*[$\"1\", $\"1\", *[]]", ro.Call("EXEC").ToString()); // reads only: runs

        // Queued while the error lasts: the write is refused at once and poisons the transaction.
        Assert.Equal("+OK", tx.Call("MULTI").ToString());
        Assert.Equal("-" + Misconf, tx.Call("SET", "t", "1").ToString());
        Assert.Equal("-EXECABORT Transaction discarded because of previous errors.", tx.Call("EXEC").ToString());

        string scriptError = c.Call("EVAL", "return redis.call('set','y','1')", "0").ToString();
        Assert.True(scriptError.StartsWith("-" + Misconf + " script: ", StringComparison.Ordinal), scriptError);
        Assert.Equal("-" + Misconf, c.Call("EVAL", "return redis.pcall('set','y','1')", "0").ToString());
        Assert.Equal("-" + Misconf, c.Call("EVAL", "#!lua\nreturn redis.call('set','y','1')", "0").ToString()); // refused before it runs
        Assert.Equal("$\"1\"", c.Call("EVAL", "return redis.call('get','x')", "0").ToString());
        Assert.Equal("$\"1\"", c.Call("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','x')", "0").ToString());
        Assert.Equal("$nil", c.Call("GET", "y").ToString());

        Assert.Equal("+OK", c.Call("DEBUG", "FAIL-FSYNC", "0").ToString());
        deadline = DateTime.UtcNow.AddSeconds(20);
        while ((reply = c.Call("EVAL", "return redis.call('set','y','2')", "0").ToString()) != "+OK" && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Equal("+OK", reply);
        Assert.Equal(0, server.Terminate());
    }
}
