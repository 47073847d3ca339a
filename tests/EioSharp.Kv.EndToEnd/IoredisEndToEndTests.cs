using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>ioredis (npm, pinned in tests/npm/package.json, installed by scripts/setup.sh) against EioSharp.Kv with the
/// default flags: pub/sub (subscribe, psubscribe, publish counts), pipeline, multi/exec with a runtime error and a WATCH
/// failure, a BLPOP woken by another client, XREADGROUP (also blocked) + XACK, defineCommand (Lua). The node script
/// (node/ioredis-e2e.js) prints its results as JSON; the values are asserted here, and the whole result is compared with
/// the same script's run against redis-server.</summary>
public sealed class IoredisEndToEndTests
{
    private static string RepositoryRoot =>
        typeof(IoredisEndToEndTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;

    private static string NodeModules => Path.Combine(RepositoryRoot, "tests", "npm", "node_modules");

    private static JsonElement RunScript(int port)
    {
        Assert.True(Directory.Exists(Path.Combine(NodeModules, "ioredis")),
            $"ioredis is not installed in {NodeModules} (run scripts/setup.sh or npm install in tests/npm)");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(RepositoryRoot, "tests", "EioSharp.Kv.EndToEnd", "node", "ioredis-e2e.js"));
        start.ArgumentList.Add("127.0.0.1");
        start.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        start.Environment["NODE_PATH"] = NodeModules;
        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the ioredis script did not finish in 60 s: " + stderr.Result);
        }
        Assert.True(process.ExitCode == 0, $"the ioredis script failed ({process.ExitCode}): {stderr.Result}");
        return JsonDocument.Parse(stdout.Result).RootElement.Clone();
    }

    private static string J(JsonElement e, string name) => e.GetProperty(name).GetRawText();

    [Fact]
    public void Ioredis_pubsub_pipeline_multi_blpop_streams_and_defineCommand_work()
    {
        JsonElement kv;
        using (var server = KvServerProcess.Start("--appendonly", "no"))
        {
            kv = RunScript(server.Port);
        }

        // pub/sub
        Assert.Equal("2", J(kv, "subscribe"));
        Assert.Equal("3", J(kv, "psubscribe"));
        Assert.Equal("2", J(kv, "publishNews")); // the channel and the pattern n*
        Assert.Equal("1", J(kv, "publishSport"));
        Assert.Equal("0", J(kv, "publishNobody"));
        Assert.Equal("""["news",1,"sport",1,"weather",0]""", J(kv, "numsub"));
        Assert.Equal("1", J(kv, "numpat"));
        Assert.Equal("""[["message","news","hello"],["pmessage","n*","news","hello"],["message","sport","goal"]]""", J(kv, "messages"));
        Assert.Equal("0", J(kv, "publishAfterUnsubscribe"));
        // pipeline
        Assert.Equal("""["OK",1,42,"v1",2,1]""", J(kv, "pipeline"));
        // multi/exec
        Assert.Equal("""[[null,"OK"],[null,1],[null,"one"]]""", J(kv, "multi"));
        Assert.Equal("""["OK","ERR ERR value is not an integer or out of range","OK"]""", J(kv, "multiRuntimeError"));
        Assert.Equal("\"ok\"", J(kv, "afterRuntimeError"));
        Assert.Equal("null", J(kv, "watchFailed")); // the watched key was changed by another client
        Assert.Equal("\"2\"", J(kv, "watchedValue"));
        Assert.Equal("""[[null,"OK"]]""", J(kv, "watchSucceeded"));
        Assert.Equal("\"4\"", J(kv, "watchedValueAfter"));
        // blpop woken by another client
        Assert.Equal("2", J(kv, "rpush"));
        Assert.Equal("""["queue","job-1"]""", J(kv, "blpop"));
        Assert.Equal("""["job-2"]""", J(kv, "queueLeft"));
        Assert.Equal("null", J(kv, "blpopTimeout"));
        // streams
        Assert.Equal("""["1-1","2-1"]""", J(kv, "xaddIds"));
        Assert.Equal("""[["orders",[["1-1",["item","apple"]],["2-1",["item","pear"]]]]]""", J(kv, "xreadgroup"));
        Assert.Equal("1", J(kv, "xack"));
        Assert.Equal("""[1,"2-1","2-1",[["alice","1"]]]""", J(kv, "xpending"));
        Assert.Equal("""[["orders",[["3-1",["item","plum"]]]]]""", J(kv, "xreadgroupBlocked"));
        Assert.Equal("2", J(kv, "xackBoth"));
        Assert.Equal("[0,null,null,null]", J(kv, "xpendingAfter"));
        // defineCommand
        Assert.Equal("[5,10,12]", J(kv, "incrCapped"));
        Assert.Equal("""["L","R"]""", J(kv, "swap"));
        Assert.Equal("""["R","L"]""", J(kv, "swapped"));
        Assert.Equal("[7,14]", J(kv, "pipelinedScript"));

        // And everything equals what the same script gets from redis-server.
        JsonElement redis;
        using (var server = RedisServerProcess.Start())
        {
            redis = RunScript(server.Port);
        }
        Assert.Equal(redis.GetRawText(), kv.GetRawText());
    }
}
