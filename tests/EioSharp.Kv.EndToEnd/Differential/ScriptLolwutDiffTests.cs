namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13: LOLWUT from scripts. Redis 7.0 flags it READONLY FAST (not noscript), so redis.call('lolwut') draws
/// the same art as for a client (a bulk string under RESP2, a verbatim-string table under redis.setresp(3)), also from
/// EVAL_RO, and its argument errors come back as script errors. Compared with redis-server 7.0.15, the version each
/// server names (INFO redis_version) replaced by "V"; the random art by its shape, as the client LOLWUT test does.</summary>
public sealed class ScriptLolwutDiffTests
{
    private static string Info(RespConnection c, string field) => ServerInfo.Field(c, "server", field);

    [Fact]
    public void Lolwut_is_callable_from_scripts_as_in_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        string rv = Info(r, "redis_version"), kvv = Info(k, "redis_version");
        var diffs = new List<string>();
        void Same(params string[] args)
        {
            string rr = r.Call(args).ToString().Replace(rv, "V", StringComparison.Ordinal);
            string kr = k.Call(args).ToString().Replace(kvv, "V", StringComparison.Ordinal);
            if (rr != kr) diffs.Add($"{string.Join(' ', args)}\n  redis-server: {rr}\n  EioSharp.Kv:  {kr}");
        }

        Same("EVAL", "return redis.call('lolwut')", "0");
        Same("EVAL", "return redis.call('LOLWUT', 'VERSION', '7')", "0");
        Same("EVAL_RO", "return redis.call('lolwut')", "0");
        Same("EVAL", "return type(redis.call('lolwut'))", "0");
        Same("EVAL", "return redis.pcall('lolwut', 'version', 'x')", "0");
        Same("EVAL", "return redis.call('lolwut', 'version', 'x')", "0");
        Same("EVAL", "return redis.call('lolwut', 'version', '5', 'x')", "0");
        Same("EVAL", "redis.setresp(3); local r = redis.call('lolwut'); return {type(r), r.verbatim_string.format, r.verbatim_string.string}", "0");
        Same("EVAL", "return redis.call('lolwut', 'version', '5', '2', '1', '1')", "0"); // 1 square, not rotated: the same art
        Same("EVAL", "local s = redis.call('lolwut', 'version', '6', '4', '2'); local _, n = string.gsub(s, '\\n', ''); return n", "0");
        Assert.True(diffs.Count == 0, string.Join('\n', diffs));

        // Schotter from a script has the shape of Redis's: as many lines, the same last line but for the version.
        string a = r.Call("EVAL", "return redis.call('lolwut', 'version', '5')", "0").Text!;
        string b = k.Call("EVAL", "return redis.call('lolwut', 'version', '5')", "0").Text!;
        string[] la = a.Split('\n'), lb = b.Split('\n');
        Assert.Equal(la.Length, lb.Length);
        Assert.Equal(la[^2].Replace(rv, "V", StringComparison.Ordinal), lb[^2].Replace(kvv, "V", StringComparison.Ordinal));
        Assert.Equal(la.Take(8), lb.Take(8)); // the first rows of squares are not rotated
    }
}
