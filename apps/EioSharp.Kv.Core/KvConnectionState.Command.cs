namespace EioSharp.Kv;

/// <summary>COMMAND [COUNT|DOCS|INFO|LIST|GETKEYS|GETKEYSANDFLAGS|HELP] with Redis 7.0's shapes, answered from Redis's own
/// command table (<see cref="KvRedisCommands"/>) for the commands this server implements.</summary>
public sealed partial class KvConnectionState
{
    /// <summary>The Redis table entries of the commands this server implements (a command Redis does not know keeps a
    /// synthetic entry, <see cref="WriteSyntheticEntry"/>).</summary>
    private static readonly Lazy<List<(KvCommandInfo Ours, RedisCommandSpec? Redis)>> s_implemented = new(() =>
        [.. KvCommandTable.All.Select(c => (c, KvRedisCommands.Commands.GetValueOrDefault(c.Name)))]);

    private static RedisCommandSpec? FindImplemented(string name)
    {
        int bar = name.IndexOf('|', StringComparison.Ordinal);
        if (KvCommandTable.Find(bar < 0 ? name : name[..bar]) is null) return null;
        return KvRedisCommands.Lookup(name);
    }

    private static void CommandCommand(KvCommand command, RespWriter reply)
    {
        List<(KvCommandInfo Ours, RedisCommandSpec? Redis)> all = s_implemented.Value;
        if (command.Count == 1)
        {
            WriteAllInfo(reply, all);
            return;
        }
        ReadOnlySpan<byte> sub = command[1];
        if (Is(sub, "COUNT"u8))
        {
            if (command.Count != 2) reply.WriteError(KvErrors.WrongArity("command|count"));
            else reply.WriteInteger(all.Count);
        }
        else if (Is(sub, "INFO"u8))
        {
            if (command.Count == 2)
            {
                WriteAllInfo(reply, all);
                return;
            }
            reply.WriteArrayHeader(command.Count - 2);
            for (int i = 2; i < command.Count; i++)
            {
                string name = command.GetString(i);
                if (FindImplemented(name) is { } spec) spec.Info.Write(reply);
                else if (KvCommandTable.Find(name) is { } ours) WriteSyntheticEntry(reply, ours);
                else reply.WriteNull();
            }
        }
        else if (Is(sub, "DOCS"u8))
        {
            var docs = new List<(string Name, RespNode? Docs)>();
            if (command.Count == 2)
            {
                foreach ((KvCommandInfo ours, RedisCommandSpec? redis) in all) docs.Add((ours.Name, redis?.Docs));
            }
            else
            {
                for (int i = 2; i < command.Count; i++)
                {
                    string name = command.GetString(i);
                    if (FindImplemented(name) is { } spec) docs.Add((spec.FullName, spec.Docs));
                    else if (KvCommandTable.Find(name) is { } ours) docs.Add((ours.Name, null));
                }
            }
            reply.WriteMapHeader(docs.Count);
            foreach ((string name, RespNode? doc) in docs)
            {
                reply.WriteBulkString(name);
                if (doc is not null) doc.Write(reply);
                else reply.WriteMapHeader(0);
            }
        }
        else if (Is(sub, "GETKEYS"u8) || Is(sub, "GETKEYSANDFLAGS"u8))
        {
            bool withFlags = Is(sub, "GETKEYSANDFLAGS"u8);
            if (command.Count < 4) // Redis 7.0: COMMAND GETKEYS <command> <arg> [<arg> ...]
            {
                reply.WriteError(KvErrors.WrongArity(withFlags ? "command|getkeysandflags" : "command|getkeys"));
                return;
            }
            var args = new List<byte[]>();
            for (int i = 2; i < command.Count; i++) args.Add(command[i].ToArray());
            if (GetKeys(args, out List<int>? positions) is { } error)
            {
                reply.WriteError(error);
                return;
            }
            if (!withFlags)
            {
                reply.WriteArrayHeader(positions!.Count);
                foreach (int p in positions) reply.WriteBulkString(args[p]);
                return;
            }
            KvCommand inner = KvCommand.Create([.. args]);
            RedisCommandSpec? spec = KvRedisCommands.Lookup(inner);
            List<(int Position, KeySpecFlags Flags)> keys = spec is null
                ? [.. positions!.Select(p => (p, KeySpecFlags.None))]
                : KvRedisCommands.GetKeys(spec, inner, _ => positions);
            reply.WriteArrayHeader(keys.Count);
            foreach ((int p, KeySpecFlags flags) in keys)
            {
                reply.WriteArrayHeader(2);
                reply.WriteBulkString(args[p]);
                string[] names = KeyFlagNames(flags);
                reply.WriteSetHeader(names.Length);
                foreach (string n in names) reply.WriteSimpleString(n);
            }
        }
        else if (Is(sub, "LIST"u8))
        {
            IEnumerable<string> names = all.SelectMany(c => c.Redis is { } r ? [r.FullName, .. r.Subcommands.Select(s => s.FullName)] : new[] { c.Ours.Name });
            if (command.Count == 5 && Is(command[2], "FILTERBY"u8))
            {
                string arg = command.GetString(4);
                if (Is(command[3], "MODULE"u8)) names = [];
                else if (Is(command[3], "ACLCAT"u8))
                {
                    int category = KvRedisCommands.CategoryIndex(arg);
                    names = names.Where(n => category >= 0 && KvRedisCommands.Lookup(n) is { } s && (s.Categories & (1UL << category)) != 0);
                }
                else if (Is(command[3], "PATTERN"u8))
                {
                    byte[] pattern = command.ToArray(4);
                    names = names.Where(n => GlobPattern.IsMatch(pattern, System.Text.Encoding.UTF8.GetBytes(n), ignoreCase: true));
                }
                else
                {
                    reply.WriteError(KvErrors.Syntax);
                    return;
                }
            }
            else if (command.Count != 2)
            {
                reply.WriteError(KvErrors.Syntax);
                return;
            }
            List<string> list = [.. names];
            reply.WriteArrayHeader(list.Count);
            foreach (string n in list) reply.WriteBulkString(n);
        }
        else if (Is(sub, "HELP"u8))
        {
            WriteHelp(reply, "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "HELP",
                "    Prints this help.");
        }
        else
        {
            reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "COMMAND"));
        }
    }

    private static string[] KeyFlagNames(KeySpecFlags flags)
    {
        (KeySpecFlags Flag, string Name)[] order =
        [
            (KeySpecFlags.RO, "RO"), (KeySpecFlags.RW, "RW"), (KeySpecFlags.OW, "OW"), (KeySpecFlags.RM, "RM"),
            (KeySpecFlags.Access, "access"), (KeySpecFlags.Update, "update"), (KeySpecFlags.Insert, "insert"),
            (KeySpecFlags.Delete, "delete"), (KeySpecFlags.NotKey, "not_key"), (KeySpecFlags.Incomplete, "incomplete"),
            (KeySpecFlags.VariableFlags, "variable_flags"),
        ];
        return [.. order.Where(o => (flags & o.Flag) != 0).Select(o => o.Name)];
    }

    private static void WriteAllInfo(RespWriter reply, List<(KvCommandInfo Ours, RedisCommandSpec? Redis)> all)
    {
        reply.WriteArrayHeader(all.Count);
        foreach ((KvCommandInfo ours, RedisCommandSpec? redis) in all)
        {
            if (redis is not null) redis.Info.Write(reply);
            else WriteSyntheticEntry(reply, ours);
        }
    }

    /// <summary>A Redis 7 COMMAND entry for a command Redis 7.0 does not have: name, arity, flags, first key, last key,
    /// step, no categories, tips, key specs or subcommands.</summary>
    private static void WriteSyntheticEntry(RespWriter reply, KvCommandInfo info)
    {
        reply.WriteArrayHeader(10);
        reply.WriteBulkString(info.Name);
        reply.WriteInteger(info.Arity);
        var flags = new List<string>(3);
        if (info.IsWrite) flags.Add("write");
        if ((info.Flags & KvCommandFlags.ReadOnly) != 0) flags.Add("readonly");
        if ((info.Flags & KvCommandFlags.NoAuth) != 0) flags.Add("no_auth");
        reply.WriteSetHeader(flags.Count);
        foreach (string flag in flags) reply.WriteSimpleString(flag);
        reply.WriteInteger(info.FirstKey);
        reply.WriteInteger(info.LastKey);
        reply.WriteInteger(info.KeyStep);
        reply.WriteSetHeader(0);
        reply.WriteSetHeader(0);
        reply.WriteArrayHeader(0);
        reply.WriteArrayHeader(0);
    }
}
