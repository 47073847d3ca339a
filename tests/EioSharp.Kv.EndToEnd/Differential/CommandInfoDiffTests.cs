namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>COMMAND INFO / DOCS / LIST / COUNT / GETKEYSANDFLAGS differential against redis-server 7.0.15, for the whole
/// command table, in RESP2 and RESP3.</summary>
/// <remarks>The names in <see cref="NotYetImplemented"/> are skipped, and only they: COMMAND COUNT is Redis's less
/// their number, COMMAND LIST Redis's without them. Subcommands are compared as a set: redis-server lists them in the
/// order of a dict whose hash seed is random per process.</remarks>
public sealed class CommandInfoDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    /// <summary>Redis 7.0.15 commands EioSharp.Kv does not have: none (SAVE and BGSAVE came with the RDB files, h42).</summary>
    private static readonly string[] NotYetImplemented = [];

    /// <summary>The reply as text with the subcommands of COMMAND INFO entries and COMMAND DOCS maps sorted.</summary>
    private static string Normalize(Resp x)
    {
        if (x.Items is null) return x.ToString();
        IReadOnlyList<Resp> items = x.Items;
        if (x.Kind is '*' && items.Count == 10 && items[0].Kind == '$' && items[1].Kind == ':' && items[9].Items is { } subs)
        {
            return "info[" + string.Join(", ", items.Take(9).Select(Normalize)) + ", subs{" + string.Join(", ", subs.Select(Normalize).Order(StringComparer.Ordinal)) + "}]";
        }
        var parts = new List<string>();
        for (int i = 0; i < items.Count; i++)
        {
            if (items[i].Text == "subcommands" && i + 1 < items.Count && items[i + 1].Items is { } docs)
            {
                parts.Add("subcommands");
                parts.Add("{" + string.Join(", ", docs.Chunk(2).Select(p => string.Join("=", p.Select(Normalize))).Order(StringComparer.Ordinal)) + "}");
                i++;
            }
            else parts.Add(Normalize(items[i]));
        }
        return x.Kind + "[" + string.Join(", ", parts) + "]";
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Command_info_and_docs_of_every_implemented_command_match_redis(int protocol)
    {
        using var r = new RespConnection(servers.Redis.Port);
        using var k = new RespConnection(servers.Kv.Port);
        Assert.False(r.Call("HELLO", protocol.ToString(System.Globalization.CultureInfo.InvariantCulture)).IsError);
        Assert.False(k.Call("HELLO", protocol.ToString(System.Globalization.CultureInfo.InvariantCulture)).IsError);
        List<string> ours = [.. k.Call("COMMAND", "LIST").Strings.Select(s => s!)];
        HashSet<string> theirs = [.. r.Call("COMMAND", "LIST").Strings.Select(s => s!)];
        Assert.Equal(ours.Count, ours.Distinct().Count());
        Assert.Equal(theirs.Where(n => !NotYetImplemented.Contains(n)).Order(StringComparer.Ordinal), ours.Order(StringComparer.Ordinal));
        int redisCount = int.Parse(r.Call("COMMAND", "COUNT").Text!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal((redisCount - NotYetImplemented.Length).ToString(System.Globalization.CultureInfo.InvariantCulture), k.Call("COMMAND", "COUNT").Text);
        Assert.Equal(ours.Count(n => !n.Contains('|', StringComparison.Ordinal)), redisCount - NotYetImplemented.Length);

        // The whole table at once: COMMAND, COMMAND INFO and COMMAND DOCS without names.
        foreach (string[] all in new[] { new[] { "COMMAND" }, ["COMMAND", "INFO"] })
        {
            List<string> a = [.. r.Call(all).Items!.Where(e => !NotYetImplemented.Contains(e.Items![0].Text)).Select(Normalize).Order(StringComparer.Ordinal)];
            List<string> b = [.. k.Call(all).Items!.Select(Normalize).Order(StringComparer.Ordinal)];
            Assert.Equal(a, b);
        }
        static List<string> DocsPairs(Resp docs, bool skip) =>
            [.. docs.Items!.Chunk(2).Where(p => !skip || !NotYetImplemented.Contains(p[0].Text)).Select(p => p[0].Text + "=" + Normalize(p[1])).Order(StringComparer.Ordinal)];
        Assert.Equal(DocsPairs(r.Call("COMMAND", "DOCS"), skip: true), DocsPairs(k.Call("COMMAND", "DOCS"), skip: false));
        var differences = new List<string>();
        foreach (string name in ours)
        {
            foreach (string sub in new[] { "INFO", "DOCS" })
            {
                Resp a = r.Call("COMMAND", sub, name), b = k.Call("COMMAND", sub, name);
                if (Normalize(a) != Normalize(b)) differences.Add($"COMMAND {sub} {name}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
            }
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences.Take(5)) + $"\n({differences.Count} differences)");
        foreach (string[] c in new[]
                 {
                     new[] { "COMMAND", "INFO", "get", "nosuchcommand", "config|get" }, ["COMMAND", "DOCS", "nosuch"], ["COMMAND", "HELP"],
                     ["COMMAND", "LIST", "FILTERBY", "MODULE", "x"], ["COMMAND", "LIST", "FILTERBY", "NOPE", "x"], ["COMMAND", "LIST", "x"],
                     ["COMMAND", "NOSUCH"], ["COMMAND", "COUNT", "x"],
                     ["COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v"], ["COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v", "GET"],
                     ["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "a", "b", "LEFT", "RIGHT"], ["COMMAND", "GETKEYSANDFLAGS", "EVAL", "s", "2", "a", "b", "c"],
                     ["COMMAND", "GETKEYSANDFLAGS", "ZUNIONSTORE", "d", "2", "a", "b"], ["COMMAND", "GETKEYSANDFLAGS", "XREAD", "STREAMS", "a", "b", "0", "0"],
                     ["COMMAND", "GETKEYSANDFLAGS", "BITFIELD", "k", "GET", "u8", "0"], ["COMMAND", "GETKEYSANDFLAGS", "MSET", "a", "1", "b", "2"],
                 })
        {
            Resp a = r.Call(c), b = k.Call(c);
            Assert.True(Normalize(a) == Normalize(b), $"{string.Join(' ', c)}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
        }
        foreach (string[] c in new[]
                 {
                     new[] { "COMMAND", "LIST", "FILTERBY", "ACLCAT", "hash" }, ["COMMAND", "LIST", "FILTERBY", "PATTERN", "x*"],
                     ["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"],
                 })
        {
            HashSet<string> a = [.. r.Call(c).Strings.Select(s => s!)];
            List<string> b = [.. k.Call(c).Strings.Select(s => s!)];
            Assert.True(b.All(a.Contains) && a.Where(n => ours.Contains(n)).All(b.Contains), string.Join(' ', c));
        }
    }
}
