using System.Text.RegularExpressions;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13 items the audit found without a test (docs/kv-issue13-audit.md): CLIENT NO-EVICT, CLIENT KILL by
/// address (ADDR, LADDR, the old form), and INFO latencystats, on redis-server 7.0.15 and EioSharp.Kv with the same
/// clients.</summary>
public sealed partial class ClientAdminDiffTests
{
    [GeneratedRegex(@"flags=(\S*)")]
    private static partial Regex Flags();

    [GeneratedRegex(@" addr=(\S+) laddr=(\S+) ")]
    private static partial Regex Addresses();

    private static List<string> Observe(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        foreach (string[] command in new[]
                 {
                     new[] { "CLIENT", "NO-EVICT", "on" }, ["CLIENT", "INFO"], ["CLIENT", "NO-EVICT", "OFF"], ["CLIENT", "INFO"],
                     ["CLIENT", "NO-EVICT", "maybe"], ["CLIENT", "NO-EVICT"], ["CLIENT", "NO-EVICT", "on", "off"],
                     ["CLIENT", "KILL", "ADDR", "1.2.3.4:5"], ["CLIENT", "KILL", "LADDR", "1.2.3.4:5"], ["CLIENT", "KILL", "1.2.3.4:5"],
                     ["CLIENT", "KILL", "ADDR"], ["CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME"],
                 })
        {
            Resp r = c.Call(command);
            seen.Add(string.Join(" ", command) + " -> " + (command[1] == "INFO" ? "flags=" + Flags().Match(r.Text!).Groups[1].Value : r.ToString()));
        }

        // By the address of a real client: ADDR closes it (1 killed), the old form answers +OK; LADDR matches every
        // client of the listening address, SKIPME yes (the default) keeps the caller.
        using (var victim = new RespConnection(port))
        {
            Match m = Addresses().Match(victim.Call("CLIENT", "INFO").Text!);
            seen.Add("KILL ADDR victim -> " + c.Call("CLIENT", "KILL", "ADDR", m.Groups[1].Value));
            seen.Add("victim closed -> " + Throws(() => victim.Call("PING")));
        }
        using (var victim = new RespConnection(port))
        {
            Match m = Addresses().Match(victim.Call("CLIENT", "INFO").Text!);
            seen.Add("KILL old form -> " + c.Call("CLIENT", "KILL", m.Groups[1].Value));
            seen.Add("victim closed -> " + Throws(() => victim.Call("PING")));
        }
        using (var victim = new RespConnection(port))
        {
            Match m = Addresses().Match(victim.Call("CLIENT", "INFO").Text!);
            seen.Add("KILL LADDR -> " + c.Call("CLIENT", "KILL", "LADDR", m.Groups[2].Value));
            seen.Add("victim closed -> " + Throws(() => victim.Call("PING")));
            seen.Add("caller kept -> " + c.Call("PING"));
        }

        c.Call("PING");
        string latency = c.Call("INFO", "latencystats").Text!;
        seen.Add("latencystats header -> " + latency.Split("\r\n")[0]);
        seen.Add("latencystats ping -> " + Regex.IsMatch(latency, @"\r\nlatency_percentiles_usec_ping:p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}\r\n"));
        seen.Add("latencystats client|kill -> " + latency.Contains("latency_percentiles_usec_client|kill:p50=", StringComparison.Ordinal));
        return seen;
    }

    private static bool Throws(Action a)
    {
        try
        {
            a();
            return false;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or EndOfStreamException)
        {
            return true;
        }
    }

    [Fact]
    public void Client_no_evict_kill_by_address_and_latencystats_answer_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = Observe(redis.Port);
        Assert.Contains("CLIENT NO-EVICT on -> +OK", expected);
        Assert.Contains("CLIENT INFO -> flags=e", expected);
        Assert.Equal(expected, Observe(kv.Port));
    }
}
