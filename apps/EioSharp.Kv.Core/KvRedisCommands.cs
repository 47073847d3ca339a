using System.Collections.Frozen;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace EioSharp.Kv;

/// <summary>A RESP3 value kept as a tree (Redis's COMMAND INFO / COMMAND DOCS replies), written back in either protocol.</summary>
internal sealed class RespNode
{
    /// <summary>The type byte: <c>+ $ : * ~ % _ ,</c>.</summary>
    public char Kind { get; init; }

    /// <summary>The payload of a string, integer or double (its text).</summary>
    public byte[] Bytes { get; init; } = [];

    /// <summary>The elements of an aggregate (a map: keys and values interleaved).</summary>
    public RespNode[] Items { get; init; } = [];

    /// <summary>Where the value starts in the parsed bytes.</summary>
    public int Start { get; private set; }

    public string Text => Encoding.UTF8.GetString(Bytes);

    public long Integer => long.Parse(Text, CultureInfo.InvariantCulture);

    /// <summary>The value of a map's <paramref name="key"/>, or null.</summary>
    public RespNode? this[string key]
    {
        get
        {
            for (int i = 0; i + 1 < Items.Length; i += 2) if (Items[i].Text == key) return Items[i + 1];
            return null;
        }
    }

    /// <summary>Parses one value at <paramref name="pos"/> and moves past it.</summary>
    public static RespNode Parse(byte[] data, ref int pos)
    {
        int start = pos;
        RespNode node = ParseValue(data, ref pos);
        node.Start = start;
        return node;
    }

    /// <summary>Parses the value that starts at <paramref name="start"/>.</summary>
    public static RespNode ParseAt(byte[] data, int start) => Parse(data, ref start);

    private static RespNode ParseValue(byte[] data, ref int pos)
    {
        int end = Array.IndexOf(data, (byte)'\r', pos);
        char kind = (char)data[pos];
        byte[] head = data[(pos + 1)..end];
        pos = end + 2;
        switch (kind)
        {
            case '+' or ':' or ',' or '-':
                return new RespNode { Kind = kind, Bytes = head };
            case '_':
                return new RespNode { Kind = kind };
            case '$':
                int len = int.Parse(Encoding.ASCII.GetString(head), CultureInfo.InvariantCulture);
                byte[] bytes = data[pos..(pos + len)];
                pos += len + 2;
                return new RespNode { Kind = kind, Bytes = bytes };
            case '*' or '~' or '%':
                int n = int.Parse(Encoding.ASCII.GetString(head), CultureInfo.InvariantCulture) * (kind == '%' ? 2 : 1);
                var items = new RespNode[n];
                for (int i = 0; i < n; i++) items[i] = Parse(data, ref pos);
                return new RespNode { Kind = kind, Items = items };
            default:
                throw new InvalidDataException($"Unexpected RESP3 type '{kind}' in the command table.");
        }
    }

    /// <summary>Writes the value with <paramref name="reply"/>'s protocol (sets and maps become arrays in RESP2, as Redis does).</summary>
    public void Write(RespWriter reply)
    {
        switch (Kind)
        {
            case '+': reply.WriteSimpleString(Bytes); break;
            case '$': reply.WriteBulkString(Bytes); break;
            case ':': reply.WriteInteger(Integer); break;
            case '_': reply.WriteNull(); break;
            case '*':
                reply.WriteArrayHeader(Items.Length);
                foreach (RespNode item in Items) item.Write(reply);
                break;
            case '~':
                reply.WriteSetHeader(Items.Length);
                foreach (RespNode item in Items) item.Write(reply);
                break;
            case '%':
                reply.WriteMapHeader(Items.Length / 2);
                foreach (RespNode item in Items) item.Write(reply);
                break;
            default: throw new InvalidOperationException("Cannot write RESP type " + Kind);
        }
    }
}

/// <summary>Key spec flags (Redis's CMD_KEY_*).</summary>
[Flags]
internal enum KeySpecFlags
{
    None = 0, RO = 1, RW = 2, OW = 4, RM = 8, Access = 16, Update = 32, Insert = 64, Delete = 128, NotKey = 256,
    Incomplete = 512, VariableFlags = 1024,
}

/// <summary>One key spec of a command (Redis 7 <c>keySpec</c>): where the search begins and how keys are found.</summary>
internal sealed record KeySpec(KeySpecFlags Flags, int Index, string? Keyword, int StartFrom, string FindType, int LastKey, int KeyStep, int Limit, int KeyNumIdx, int FirstKey)
{
    public bool BeginsAtIndex => Keyword is null && Index > 0;
}

/// <summary>A command of Redis 7.0's command table (a subcommand's <see cref="FullName"/> is <c>parent|sub</c>).</summary>
internal sealed class RedisCommandSpec
{
    public required string FullName { get; init; }
    public required int Arity { get; init; }
    public required FrozenSet<string> Flags { get; init; }
    public required ulong Categories { get; init; }
    public required KeySpec[] KeySpecs { get; init; }
    /// <summary>Where this command's COMMAND INFO entry starts in the table resource. The entry is parsed when asked
    /// for (<see cref="Info"/>): the parsed trees of the whole table would stay in memory as 24,168 nodes with a byte array each (a
    /// few MB of an otherwise empty server's RSS, issue 11) for the rare COMMAND INFO/DOCS.</summary>
    public required int InfoStart { get; init; }
    public RedisCommandSpec? Parent { get; init; }
    public RedisCommandSpec[] Subcommands { get; set; } = [];
    public FrozenDictionary<string, RedisCommandSpec> SubcommandsByName { get; set; } = FrozenDictionary<string, RedisCommandSpec>.Empty;

    /// <summary>The bit of this command in an ACL selector's command bitmap.</summary>
    public int AclId { get; set; }

    /// <summary>The COMMAND INFO entry (parsed from the table resource at each call).</summary>
    public RespNode Info => KvRedisCommands.InfoEntry(InfoStart);

    /// <summary>The COMMAND DOCS entry, or null (parsed from the docs resource at each call; the docs resource is read
    /// at the first COMMAND DOCS).</summary>
    public RespNode? Docs => KvRedisCommands.DocsEntry(FullName);

    public bool NoAuth => Flags.Contains("no_auth");

    /// <summary>Refused inside MULTI (Redis's CMD_NO_MULTI: "ERR Command not allowed inside a transaction").</summary>
    public bool NoMulti => Flags.Contains("no_multi");
}

/// <summary>Redis 7.0's command table (COMMAND INFO and COMMAND DOCS of redis-server 7.0.15, generated by
/// scripts/gen-kv-command-data.py into Resources/): flags, ACL categories, tips, key specs, subcommands and docs.</summary>
/// <remarks>EioSharp.Kv answers COMMAND INFO/DOCS from it for the commands it implements, and its ACL works on the whole
/// table (as Redis's ACL rules name any command and its category counts in ACL LIST cover every command).</remarks>
internal static class KvRedisCommands
{
    /// <summary>Redis's ACL categories, in its order (bit i = category i).</summary>
    public static readonly string[] Categories =
    [
        "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo", "stream",
        "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
    ];

    private static readonly Lazy<Table> s_table = new(Load);

    private static readonly Lazy<(byte[] Bytes, FrozenDictionary<string, int> Starts)> s_docs = new(LoadDocs);

    private sealed record Table(FrozenDictionary<string, RedisCommandSpec> Commands, RedisCommandSpec[] All, int IdCount, byte[] InfoBytes);

    /// <summary>The COMMAND INFO entry that starts at <paramref name="start"/> in the table resource.</summary>
    internal static RespNode InfoEntry(int start) => RespNode.ParseAt(s_table.Value.InfoBytes, start);

    /// <summary>The COMMAND DOCS entry of <paramref name="fullName"/> (<c>parent|sub</c> for a subcommand), or null.</summary>
    internal static RespNode? DocsEntry(string fullName)
    {
        (byte[] bytes, FrozenDictionary<string, int> starts) = s_docs.Value;
        return starts.TryGetValue(fullName, out int start) ? RespNode.ParseAt(bytes, start) : null;
    }

    /// <summary>Reads the docs resource and indexes where each command's (and subcommand's) entry starts; the parsed tree
    /// is dropped.</summary>
    private static (byte[], FrozenDictionary<string, int>) LoadDocs()
    {
        byte[] docs = Resource("redis-commands.docs.resp3");
        int pos = 0;
        RespNode docsRoot = RespNode.Parse(docs, ref pos);
        var starts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < docsRoot.Items.Length; i += 2)
        {
            string name = docsRoot.Items[i].Text;
            RespNode entry = docsRoot.Items[i + 1];
            if (!Commands.ContainsKey(name)) continue;
            starts[name] = entry.Start;
            if (entry["subcommands"] is { } subs)
            {
                for (int j = 0; j + 1 < subs.Items.Length; j += 2) starts[subs.Items[j].Text] = subs.Items[j + 1].Start;
            }
        }
        return (docs, starts.ToFrozenDictionary(StringComparer.Ordinal));
    }

    /// <summary>Top-level commands by lower-case name.</summary>
    public static FrozenDictionary<string, RedisCommandSpec> Commands => s_table.Value.Commands;

    /// <summary>Every command and subcommand, in ACL id order.</summary>
    public static RedisCommandSpec[] All => s_table.Value.All;

    /// <summary>The number of ACL command ids (commands and subcommands).</summary>
    public static int IdCount => s_table.Value.IdCount;

    /// <summary>The index of category <paramref name="name"/> (case-insensitive), or -1.</summary>
    public static int CategoryIndex(string name)
    {
        for (int i = 0; i < Categories.Length; i++) if (string.Equals(Categories[i], name, StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }

    /// <summary>Finds a command or <c>parent|sub</c> subcommand by name (case-insensitive), as Redis's ACLLookupCommand.</summary>
    public static RedisCommandSpec? Lookup(string name)
    {
        int bar = name.IndexOf('|', StringComparison.Ordinal);
        if (bar < 0) return Commands.GetValueOrDefault(name.ToLowerInvariant());
        if (name.IndexOf('|', bar + 1) >= 0) return null;
        RedisCommandSpec? parent = Commands.GetValueOrDefault(name[..bar].ToLowerInvariant());
        return parent?.SubcommandsByName.GetValueOrDefault(name[(bar + 1)..].ToLowerInvariant());
    }

    // KvCommandInfo.RedisSpec's markers: the entry has no Redis command of its name; the entry is not in KvCommandTable.All.
    private static readonly object s_noSpec = new(), s_notInTable = new();

    // Each command of this server's table with Redis's entry for its name (null: not a Redis command), by reference.
    private static readonly Lazy<FrozenDictionary<KvCommandInfo, RedisCommandSpec?>> s_byInfo = new(() =>
    {
        var byInfo = new Dictionary<KvCommandInfo, RedisCommandSpec?>(ReferenceEqualityComparer.Instance);
        foreach (KvCommandInfo info in KvCommandTable.All) byInfo.TryAdd(info, Commands.GetValueOrDefault(info.Name));
        return byInfo.ToFrozenDictionary(ReferenceEqualityComparer.Instance);
    });

    /// <summary>As <see cref="Lookup(KvCommand)"/> for a command whose table entry is <paramref name="info"/> (found by
    /// its name, case-insensitively): Redis's entry for the name is looked up once per table entry, so a command
    /// without subcommands costs a dictionary probe by reference (no string of its name per command).</summary>
    public static RedisCommandSpec? Lookup(KvCommand command, KvCommandInfo info)
    {
        object? slot = Volatile.Read(ref info.RedisSpec.Value); // the probe below once per table entry, not per command
        if (slot is null)
        {
            slot = s_byInfo.Value.TryGetValue(info, out RedisCommandSpec? found) ? (object?)found ?? s_noSpec : s_notInTable;
            Volatile.Write(ref info.RedisSpec.Value, slot);
        }
        if (ReferenceEquals(slot, s_notInTable)) return Lookup(command);
        var cmd = slot as RedisCommandSpec; // s_noSpec: null
        if (cmd is null || cmd.Subcommands.Length == 0 || command.Count < 2) return cmd;
        return cmd.SubcommandsByName.GetValueOrDefault(command.GetString(1).ToLowerInvariant());
    }

    /// <summary>The command Redis would run for these arguments (the subcommand when the command has subcommands and the
    /// second argument names one), or null; as Redis's lookupCommand.</summary>
    public static RedisCommandSpec? Lookup(KvCommand command)
    {
        if (command.Count == 0) return null;
        RedisCommandSpec? cmd = Commands.GetValueOrDefault(command.GetString(0).ToLowerInvariant());
        if (cmd is null || cmd.Subcommands.Length == 0 || command.Count < 2) return cmd;
        return cmd.SubcommandsByName.GetValueOrDefault(command.GetString(1).ToLowerInvariant());
    }

    private static byte[] Resource(string name)
    {
        using Stream stream = typeof(KvRedisCommands).Assembly.GetManifestResourceStream("EioSharp.Kv.Resources." + name)
            ?? throw new InvalidOperationException("Missing resource " + name);
        var ms = new MemoryStream();
        stream.CopyTo(ms);
        return ms.ToArray();
    }

    private static Table Load()
    {
        byte[] info = Resource("redis-commands.info.resp3");
        int pos = 0;
        RespNode root = RespNode.Parse(info, ref pos);
        var all = new List<RedisCommandSpec>();
        var top = new Dictionary<string, RedisCommandSpec>(StringComparer.Ordinal);
        foreach (RespNode entry in root.Items)
        {
            RedisCommandSpec spec = Build(entry, null, all);
            top[spec.FullName] = spec;
        }
        // ACL ids in name order, so that the table (and ACL LIST, which follows ids nowhere) is stable.
        all.Sort((a, b) => string.CompareOrdinal(a.FullName, b.FullName));
        for (int i = 0; i < all.Count; i++) all[i].AclId = i;
        return new Table(top.ToFrozenDictionary(StringComparer.Ordinal), [.. all], all.Count, info);
    }

    private static RedisCommandSpec Build(RespNode entry, RedisCommandSpec? parent, List<RedisCommandSpec> all)
    {
        RespNode[] f = entry.Items;
        ulong categories = 0;
        foreach (RespNode c in f[6].Items)
        {
            int idx = CategoryIndex(c.Text.TrimStart('@'));
            if (idx >= 0) categories |= 1UL << idx;
        }
        var spec = new RedisCommandSpec
        {
            FullName = f[0].Text,
            Arity = (int)f[1].Integer,
            Flags = f[2].Items.Select(x => x.Text).ToFrozenSet(StringComparer.Ordinal),
            Categories = categories,
            KeySpecs = [.. f[8].Items.Select(ParseKeySpec)],
            InfoStart = entry.Start,
            Parent = parent,
        };
        all.Add(spec);
        if (f[9].Items.Length > 0)
        {
            spec.Subcommands = [.. f[9].Items.Select(s => Build(s, spec, all))];
            spec.SubcommandsByName = spec.Subcommands.ToFrozenDictionary(s => s.FullName[(s.FullName.IndexOf('|', StringComparison.Ordinal) + 1)..], StringComparer.Ordinal);
        }
        return spec;
    }

    private static KeySpec ParseKeySpec(RespNode node)
    {
        KeySpecFlags flags = KeySpecFlags.None;
        foreach (RespNode f in node["flags"]?.Items ?? [])
        {
            flags |= f.Text switch
            {
                "RO" => KeySpecFlags.RO, "RW" => KeySpecFlags.RW, "OW" => KeySpecFlags.OW, "RM" => KeySpecFlags.RM,
                "access" => KeySpecFlags.Access, "update" => KeySpecFlags.Update, "insert" => KeySpecFlags.Insert,
                "delete" => KeySpecFlags.Delete, "not_key" => KeySpecFlags.NotKey, "incomplete" => KeySpecFlags.Incomplete,
                "variable_flags" => KeySpecFlags.VariableFlags, _ => KeySpecFlags.None,
            };
        }
        RespNode bs = node["begin_search"]!, fk = node["find_keys"]!;
        int index = 0, startFrom = 0;
        string? keyword = null;
        switch (bs["type"]!.Text)
        {
            case "index": index = (int)bs["spec"]!["index"]!.Integer; break;
            case "keyword":
                keyword = bs["spec"]!["keyword"]!.Text;
                startFrom = (int)bs["spec"]!["startfrom"]!.Integer;
                break;
            default: index = -1; break; // unknown: the command's own key finder is used
        }
        string findType = fk["type"]!.Text;
        RespNode? s = fk["spec"];
        int Get(string k) => s?[k] is { } v ? (int)v.Integer : 0;
        return new KeySpec(flags, index, keyword, startFrom, findType, Get("lastkey"), Get("keystep"), Get("limit"), Get("keynumidx"), Get("firstkey"));
    }

    /// <summary>The keys of <paramref name="command"/> with their key-spec flags, as Redis's getKeysFromCommandWithSpecs
    /// (GET_KEYSPEC_DEFAULT): the key specs when they are complete and their flags fixed, otherwise
    /// <paramref name="fallback"/> (the command's own key finder), each key then with the union of the spec flags.</summary>
    public static List<(int Position, KeySpecFlags Flags)> GetKeys(RedisCommandSpec cmd, KvCommand command, Func<KvCommand, List<int>?> fallback)
    {
        var result = new List<(int, KeySpecFlags)>();
        bool hasKeySpec = cmd.KeySpecs.Any(k => (k.Flags & KeySpecFlags.NotKey) == 0);
        bool variable = cmd.KeySpecs.Any(k => (k.Flags & KeySpecFlags.VariableFlags) != 0);
        if (hasKeySpec && !variable && TryKeySpecs(cmd, command, result)) return result;
        result.Clear();
        if (cmd.FullName is "set" or "bitfield" && command.Count >= 2)
        {
            // Redis's setGetKeys / bitfieldGetKeys: the flags depend on the arguments (SET ... GET reads the old value;
            // BITFIELD with only GET / OVERFLOW is read-only).
            result.Add((1, cmd.FullName == "set" ? SetKeyFlags(command) : BitfieldKeyFlags(command)));
            return result;
        }
        KeySpecFlags union = KeySpecFlags.None;
        foreach (KeySpec k in cmd.KeySpecs) if ((k.Flags & KeySpecFlags.NotKey) == 0) union |= k.Flags;
        if (fallback(command) is { } positions) foreach (int p in positions) result.Add((p, union));
        return result;
    }

    private static KeySpecFlags SetKeyFlags(KvCommand command)
    {
        for (int i = 3; i < command.Count; i++)
        {
            if (Ascii.EqualsIgnoreCase(command[i], "GET"u8)) return KeySpecFlags.RW | KeySpecFlags.Access | KeySpecFlags.Update;
        }
        return KeySpecFlags.OW | KeySpecFlags.Update;
    }

    private static KeySpecFlags BitfieldKeyFlags(KvCommand command)
    {
        bool readOnly = true;
        for (int i = 2; i < command.Count; i++)
        {
            int remaining = command.Count - i - 1;
            if (Ascii.EqualsIgnoreCase(command[i], "GET"u8) && remaining >= 2) i += 2;
            else if ((Ascii.EqualsIgnoreCase(command[i], "SET"u8) || Ascii.EqualsIgnoreCase(command[i], "INCRBY"u8)) && remaining >= 3)
            {
                readOnly = false;
                break;
            }
            else if (Ascii.EqualsIgnoreCase(command[i], "OVERFLOW"u8) && remaining >= 1) i += 1;
            else
            {
                readOnly = false;
                break;
            }
        }
        return readOnly ? KeySpecFlags.RO | KeySpecFlags.Access : KeySpecFlags.RW | KeySpecFlags.Access | KeySpecFlags.Update;
    }

    private static bool TryKeySpecs(RedisCommandSpec cmd, KvCommand command, List<(int, KeySpecFlags)> result)
    {
        int argc = command.Count;
        foreach (KeySpec spec in cmd.KeySpecs)
        {
            if ((spec.Flags & KeySpecFlags.NotKey) != 0) continue;
            int first = 0;
            if (spec.Keyword is { } keyword)
            {
                int start = spec.StartFrom > 0 ? spec.StartFrom : argc + spec.StartFrom;
                int end = spec.StartFrom > 0 ? argc - 1 : 1;
                for (int i = start; i != end; i = start <= end ? i + 1 : i - 1)
                {
                    if (i >= argc || i < 1) break;
                    if (Ascii.EqualsIgnoreCase(command[i], Encoding.ASCII.GetBytes(keyword)))
                    {
                        first = i + 1;
                        break;
                    }
                }
                if (first == 0) continue;
            }
            else if (spec.Index > 0) first = spec.Index;
            else return false;
            int last, step;
            if (spec.FindType == "range")
            {
                step = spec.KeyStep;
                if (spec.LastKey >= 0) last = first + spec.LastKey;
                else if (spec.Limit == 0) last = argc + spec.LastKey;
                else last = first + ((argc - first) / spec.Limit + spec.LastKey);
            }
            else if (spec.FindType == "keynum")
            {
                step = spec.KeyStep;
                if (spec.KeyNumIdx >= argc || first + spec.KeyNumIdx >= argc) return false;
                if (!RespNumbers.TryParseInt64(command[first + spec.KeyNumIdx], out long numKeys) || numKeys < 0) return false;
                first += spec.FirstKey;
                last = first + (int)numKeys - 1;
            }
            else return false;
            if (last >= argc || last < first || first >= argc)
            {
                if (last < first && spec.FindType == "keynum") continue; // zero keys
                return false;
            }
            for (int i = first; i <= last; i += Math.Max(step, 1))
            {
                if (i >= argc || i < first) continue;
                result.Add((i, spec.Flags));
            }
            if ((spec.Flags & KeySpecFlags.Incomplete) != 0) return false;
        }
        return true;
    }
}
