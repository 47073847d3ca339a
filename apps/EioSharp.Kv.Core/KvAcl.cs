using System.Collections;
using System.Security.Cryptography;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Why an ACL check failed (Redis's ACL_DENIED_*; the order matters when several selectors disagree).</summary>
public enum KvAclDenial
{
    /// <summary>Allowed.</summary>
    None = 0,
    /// <summary>The command or subcommand is not allowed.</summary>
    Command = 1,
    /// <summary>A key is outside the user's key patterns (or lacks the read/write permission the command needs).</summary>
    Key = 2,
    /// <summary>Authentication failed (only in the ACL log).</summary>
    Auth = 3,
    /// <summary>A Pub/Sub channel is outside the user's channel patterns.</summary>
    Channel = 4,
}

/// <summary>Key pattern permissions (Redis's ACL_READ_PERMISSION / ACL_WRITE_PERMISSION).</summary>
[Flags]
internal enum AclKeyPermission { Read = 1, Write = 2, All = 3 }

/// <summary>An ACL selector (Redis 7.0's <c>aclSelector</c>): allowed commands (a bitmap over Redis's command table plus
/// the "future commands" bit set only by +@all), allowed first arguments, key patterns and channel patterns.</summary>
internal sealed class AclSelector
{
    public bool AllKeys, AllChannels, AllCommands;
    public BitArray Allowed = new(KvRedisCommands.IdCount + 1);
    public Dictionary<int, List<string>>? FirstArgs;
    public List<(AclKeyPermission Flags, string Pattern)> Patterns = [];
    public List<string> Channels = [];

    private static int FutureBit => KvRedisCommands.IdCount;

    public AclSelector Clone() => new()
    {
        AllKeys = AllKeys, AllChannels = AllChannels, AllCommands = AllCommands,
        Allowed = new BitArray(Allowed),
        FirstArgs = FirstArgs?.ToDictionary(p => p.Key, p => new List<string>(p.Value)),
        Patterns = [.. Patterns], Channels = [.. Channels],
    };

    public bool CanExecuteFutureCommands => Allowed[FutureBit];

    private void SetBit(int id, bool value)
    {
        Allowed[id] = value;
        if (!value) AllCommands = false;
    }

    private void ChangePerm(RedisCommandSpec cmd, bool allow)
    {
        SetBit(cmd.AclId, allow);
        FirstArgs?.Remove(cmd.AclId);
        foreach (RedisCommandSpec sub in cmd.Subcommands) SetBit(sub.AclId, allow);
    }

    private void SetCategory(int category, bool allow)
    {
        ulong flag = 1UL << category;
        foreach (RedisCommandSpec cmd in KvRedisCommands.All) if ((cmd.Categories & flag) != 0) ChangePerm(cmd, allow);
    }

    public (int On, int Off) CountCategory(int category)
    {
        ulong flag = 1UL << category;
        int on = 0, off = 0;
        foreach (RedisCommandSpec cmd in KvRedisCommands.All)
        {
            if ((cmd.Categories & flag) == 0) continue;
            if (Allowed[cmd.AclId]) on++;
            else off++;
        }
        return (on, off);
    }

    /// <summary>Applies one selector rule (Redis's ACLSetSelector); returns null or the error (ACLSetUserStringError).</summary>
    public string? Apply(string op)
    {
        if (op.Equals("allkeys", StringComparison.OrdinalIgnoreCase) || op == "~*")
        {
            AllKeys = true;
            Patterns.Clear();
        }
        else if (op.Equals("resetkeys", StringComparison.OrdinalIgnoreCase))
        {
            AllKeys = false;
            Patterns.Clear();
        }
        else if (op.Equals("allchannels", StringComparison.OrdinalIgnoreCase) || op == "&*")
        {
            AllChannels = true;
            Channels.Clear();
        }
        else if (op.Equals("resetchannels", StringComparison.OrdinalIgnoreCase))
        {
            AllChannels = false;
            Channels.Clear();
        }
        else if (op.Equals("allcommands", StringComparison.OrdinalIgnoreCase) || op.Equals("+@all", StringComparison.OrdinalIgnoreCase))
        {
            Allowed.SetAll(true);
            AllCommands = true;
            FirstArgs = null;
        }
        else if (op.Equals("nocommands", StringComparison.OrdinalIgnoreCase) || op.Equals("-@all", StringComparison.OrdinalIgnoreCase))
        {
            Allowed.SetAll(false);
            AllCommands = false;
            FirstArgs = null;
        }
        else if (op.Length > 0 && (op[0] == '~' || op[0] == '%'))
        {
            if (AllKeys) return KvAcl.ErrPatternAfterAllKeys;
            AclKeyPermission flags = 0;
            int offset = 1;
            if (op[0] == '%')
            {
                bool tilde = false;
                for (; offset < op.Length; offset++)
                {
                    char c = char.ToUpperInvariant(op[offset]);
                    if (c == 'R' && (flags & AclKeyPermission.Read) == 0) flags |= AclKeyPermission.Read;
                    else if (c == 'W' && (flags & AclKeyPermission.Write) == 0) flags |= AclKeyPermission.Write;
                    else if (op[offset] == '~')
                    {
                        offset++;
                        tilde = true;
                        break;
                    }
                    else return KvAcl.ErrSyntax;
                }
                _ = tilde;
            }
            else flags = AclKeyPermission.All;
            string pattern = op[offset..];
            if (KvAcl.HasSpaces(pattern)) return KvAcl.ErrSyntax;
            int existing = Patterns.FindIndex(p => p.Pattern == pattern);
            if (existing < 0) Patterns.Add((flags, pattern));
            else Patterns[existing] = (Patterns[existing].Flags | flags, pattern);
            AllKeys = false;
        }
        else if (op.Length > 0 && op[0] == '&')
        {
            if (AllChannels) return KvAcl.ErrPatternAfterAllChannels;
            string pattern = op[1..];
            if (KvAcl.HasSpaces(pattern)) return KvAcl.ErrSyntax;
            if (!Channels.Contains(pattern)) Channels.Add(pattern);
            AllChannels = false;
        }
        else if (op.Length > 0 && op[0] == '+' && (op.Length < 2 || op[1] != '@'))
        {
            string name = op[1..];
            int bar = name.LastIndexOf('|');
            if (bar < 0)
            {
                RedisCommandSpec? cmd = KvRedisCommands.Lookup(name);
                if (cmd is null) return KvAcl.ErrUnknown;
                ChangePerm(cmd, true);
            }
            else
            {
                string parentName = name[..bar], sub = name[(bar + 1)..];
                RedisCommandSpec? cmd = KvRedisCommands.Lookup(parentName);
                if (cmd is null) return KvAcl.ErrUnknown;
                if (cmd.Parent is not null) return "Allowing first-arg of a subcommand is not supported";
                if (sub.Length == 0) return KvAcl.ErrSyntax;
                if (cmd.Subcommands.Length > 0)
                {
                    RedisCommandSpec? subCmd = KvRedisCommands.Lookup(name);
                    if (subCmd is null) return KvAcl.ErrUnknown;
                    ChangePerm(subCmd, true);
                }
                else
                {
                    FirstArgs ??= [];
                    if (!FirstArgs.TryGetValue(cmd.AclId, out List<string>? list)) FirstArgs[cmd.AclId] = list = [];
                    if (!list.Any(s => s.Equals(sub, StringComparison.OrdinalIgnoreCase))) list.Add(sub);
                }
            }
        }
        else if (op.Length > 0 && op[0] == '-' && (op.Length < 2 || op[1] != '@'))
        {
            RedisCommandSpec? cmd = KvRedisCommands.Lookup(op[1..]);
            if (cmd is null) return KvAcl.ErrUnknown;
            ChangePerm(cmd, false);
        }
        else if (op.Length > 1 && (op[0] == '+' || op[0] == '-') && op[1] == '@')
        {
            int category = KvRedisCommands.CategoryIndex(op[2..]);
            if (category < 0) return KvAcl.ErrUnknown;
            SetCategory(category, op[0] == '+');
        }
        else return KvAcl.ErrSyntax;
        return null;
    }

    /// <summary>The command rules as ACL LIST shows them (Redis's ACLDescribeSelectorCommandRules: +@all or -@all, then the
    /// best-fitting categories, then single commands and first-args).</summary>
    public string DescribeCommandRules()
    {
        var rules = new StringBuilder();
        bool additive;
        var fake = new AclSelector();
        if (CanExecuteFutureCommands)
        {
            additive = false;
            rules.Append("+@all ");
            fake.Apply("+@all");
        }
        else
        {
            additive = true;
            rules.Append("-@all ");
            fake.Apply("-@all");
        }
        var temp = new AclSelector { Allowed = new BitArray(Allowed) };
        var applied = new bool[KvRedisCommands.Categories.Length];
        while (true)
        {
            int best = -1, minDiff = int.MaxValue, maxSame = 0;
            for (int j = 0; j < KvRedisCommands.Categories.Length; j++)
            {
                if (applied[j]) continue;
                (int on, int off) = temp.CountCategory(j);
                int diff = additive ? off : on, same = additive ? on : off;
                if (same > diff && (diff < minDiff || (diff == minDiff && same > maxSame)))
                {
                    best = j;
                    minDiff = diff;
                    maxSame = same;
                }
            }
            if (best == -1) break;
            string name = KvRedisCommands.Categories[best];
            fake.Apply((additive ? "+@" : "-@") + name);
            temp.Apply((additive ? "-@" : "+@") + name);
            rules.Append(additive ? "+@" : "-@").Append(name).Append(' ');
            applied[best] = true;
        }
        foreach (RedisCommandSpec cmd in KvRedisCommands.All)
        {
            if (cmd.Parent is not null) continue; // subcommands right after their parent, as Redis recurses
            SingleCommand(cmd, fake, rules);
            foreach (RedisCommandSpec sub in cmd.Subcommands) SingleCommand(sub, fake, rules);
        }
        if (rules.Length > 0) rules.Length--;
        return rules.ToString();
    }

    private void SingleCommand(RedisCommandSpec cmd, AclSelector fake, StringBuilder rules)
    {
        bool userBit = Allowed[cmd.AclId], fakeBit = fake.Allowed[cmd.AclId];
        if (userBit != fakeBit)
        {
            rules.Append(userBit ? '+' : '-').Append(cmd.FullName).Append(' ');
            fake.ChangePerm(cmd, userBit);
        }
        if (!userBit && FirstArgs is not null && FirstArgs.TryGetValue(cmd.AclId, out List<string>? args))
        {
            foreach (string a in args) rules.Append('+').Append(cmd.FullName).Append('|').Append(a).Append(' ');
        }
    }

    /// <summary>The key patterns as ACL GETUSER shows them.</summary>
    public string DescribeKeys() => AllKeys ? "~*" : string.Join(' ', Patterns.Select(PatternString));

    /// <summary>The channel patterns as ACL GETUSER shows them.</summary>
    public string DescribeChannels() => AllChannels ? "&*" : string.Join(' ', Channels.Select(c => "&" + c));

    public static string PatternString((AclKeyPermission Flags, string Pattern) p) => p.Flags switch
    {
        AclKeyPermission.All => "~",
        AclKeyPermission.Read => "%R~",
        _ => "%W~",
    } + p.Pattern;

    /// <summary>Keys, channels and commands as ACL LIST shows them (Redis's ACLDescribeSelector).</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        if (AllKeys) sb.Append("~* ");
        else foreach (var p in Patterns) sb.Append(PatternString(p)).Append(' ');
        if (AllChannels) sb.Append("&* ");
        else
        {
            sb.Append("resetchannels ");
            foreach (string c in Channels) sb.Append('&').Append(c).Append(' ');
        }
        sb.Append(DescribeCommandRules());
        return sb.ToString();
    }

    /// <summary>Redis's ACLSelectorCheckCmd.</summary>
    public (KvAclDenial Denial, int Position) Check(RedisCommandSpec cmd, KvCommand command, Func<KvCommand, List<int>?> keyFinder)
    {
        if (!AllCommands && !cmd.NoAuth && !Allowed[cmd.AclId])
        {
            if (command.Count < 2 || FirstArgs is null || !FirstArgs.TryGetValue(cmd.AclId, out List<string>? args)) return (KvAclDenial.Command, 0);
            int idx = cmd.Parent is not null ? 2 : 1;
            if (idx >= command.Count) return (KvAclDenial.Command, 0);
            string first = command.GetString(idx);
            if (!args.Any(a => a.Equals(first, StringComparison.OrdinalIgnoreCase))) return (KvAclDenial.Command, 0);
        }
        if (!AllKeys && cmd.KeySpecs.Length > 0)
        {
            foreach ((int pos, KeySpecFlags flags) in KvRedisCommands.GetKeys(cmd, command, keyFinder))
            {
                if (!CheckKey(command[pos], flags)) return (KvAclDenial.Key, pos);
            }
        }
        if (!AllChannels)
        {
            foreach ((int pos, bool pattern) in ChannelArgs(cmd, command))
            {
                if (!CheckChannel(command[pos], pattern)) return (KvAclDenial.Channel, pos);
            }
        }
        return (KvAclDenial.None, 0);
    }

    public bool CheckKey(ReadOnlySpan<byte> key, KeySpecFlags specFlags)
    {
        if (AllKeys) return true;
        AclKeyPermission need = 0;
        if ((specFlags & KeySpecFlags.Access) != 0) need |= AclKeyPermission.Read;
        if ((specFlags & (KeySpecFlags.Insert | KeySpecFlags.Delete | KeySpecFlags.Update)) != 0) need |= AclKeyPermission.Write;
        foreach (var p in Patterns)
        {
            if ((p.Flags & need) != need) continue;
            if (GlobPattern.IsMatch(Encoding.UTF8.GetBytes(p.Pattern), key)) return true;
        }
        return false;
    }

    public bool CheckChannel(ReadOnlySpan<byte> channel, bool isPattern)
    {
        if (AllChannels) return true;
        foreach (string p in Channels)
        {
            byte[] pb = Encoding.UTF8.GetBytes(p);
            if (isPattern ? channel.SequenceEqual(pb) : GlobPattern.IsMatch(pb, channel)) return true;
        }
        return false;
    }

    /// <summary>The channel arguments Redis checks (CMD_CHANNEL_PUBLISH / CMD_CHANNEL_SUBSCRIBE): PUBLISH, SPUBLISH
    /// channel; SUBSCRIBE, SSUBSCRIBE channels; PSUBSCRIBE patterns (compared literally).</summary>
    public static IEnumerable<(int Position, bool Pattern)> ChannelArgs(RedisCommandSpec cmd, KvCommand command)
    {
        switch (cmd.FullName)
        {
            case "publish" or "spublish":
                if (command.Count > 1) yield return (1, false);
                break;
            case "subscribe" or "ssubscribe":
                for (int i = 1; i < command.Count; i++) yield return (i, false);
                break;
            case "psubscribe":
                for (int i = 1; i < command.Count; i++) yield return (i, true);
                break;
        }
    }
}

/// <summary>An ACL user. Its rules are an immutable snapshot (<see cref="State"/>) replaced whole by ACL SETUSER, so that
/// connections on any domain read them without a lock.</summary>
public sealed class KvAclUser
{
    internal KvAclUser(string name, AclUserState state)
    {
        Name = name;
        _state = state;
    }

    /// <summary>The user name.</summary>
    public string Name { get; }

    private AclUserState _state;

    internal AclUserState State
    {
        get => Volatile.Read(ref _state);
        set => Volatile.Write(ref _state, value);
    }

    /// <summary>Set when ACL DELUSER (or ACL LOAD) removed the user: its connections are closed.</summary>
    public bool Deleted { get; internal set; }

    /// <summary>Whether the user has the nopass flag and is enabled (a new connection as this user is authenticated).</summary>
    public bool NoPassEnabled => State is { NoPass: true, Enabled: true };
}

/// <summary>A user's rules (Redis's <c>user</c> without its name): flags, password hashes and the root selector.</summary>
internal sealed class AclUserState
{
    public bool Enabled;
    public bool NoPass;
    public int Sanitize; // 0: neither flag, 1: sanitize-payload, 2: skip-sanitize-payload
    public List<string> Passwords = [];
    public AclSelector Root = new();
    public List<AclSelector> Selectors = []; // Redis 7's selectors after the root one: `(...)` rules

    public AclUserState Clone() => new()
    {
        Enabled = Enabled, NoPass = NoPass, Sanitize = Sanitize, Passwords = [.. Passwords], Root = Root.Clone(),
        Selectors = [.. Selectors.Select(x => x.Clone())],
    };

    /// <summary>The root selector, then the others (Redis's u->selectors).</summary>
    public IEnumerable<AclSelector> AllSelectors()
    {
        yield return Root;
        foreach (AclSelector x in Selectors) yield return x;
    }

    /// <summary>Redis's ACLCheckAllUserCommandPerm: allowed when one selector allows it; otherwise the most relevant
    /// denial (the highest ACL_DENIED_* value, then the furthest argument).</summary>
    public (KvAclDenial Denial, int Position) Check(RedisCommandSpec cmd, KvCommand command, Func<KvCommand, List<int>?> keyFinder)
    {
        (KvAclDenial Denial, int Position) relevant = (KvAclDenial.Command, 0);
        foreach (AclSelector x in AllSelectors())
        {
            (KvAclDenial denial, int pos) = x.Check(cmd, command, keyFinder);
            if (denial == KvAclDenial.None) return (KvAclDenial.None, 0);
            if (denial > relevant.Denial || (denial == relevant.Denial && pos > relevant.Position)) relevant = (denial, pos);
        }
        return relevant;
    }

    /// <summary>Whether some selector lets a client subscribed to <paramref name="channel"/> (a pattern when
    /// <paramref name="isPattern"/>, compared literally) keep it (Redis's ACLKillPubsubClientsIfNeeded).</summary>
    public bool AllowsChannel(ReadOnlySpan<byte> channel, bool isPattern)
    {
        foreach (AclSelector x in AllSelectors())
        {
            if (x.CheckChannel(channel, isPattern)) return true;
        }
        return false;
    }

    /// <summary>Redis's ACLMergeSelectorArguments: an argument starting with '(' and not ending with ')' is joined with the
    /// following ones (by spaces) up to one ending with ')'. Returns null and the index of the opening argument when a
    /// selector is not closed.</summary>
    public static List<string>? MergeSelectorArguments(IReadOnlyList<string> args, out int unmatched)
    {
        var merged = new List<string>(args.Count);
        StringBuilder? selector = null;
        unmatched = -1;
        for (int j = 0; j < args.Count; j++)
        {
            string op = args[j];
            if (selector is null && op.Length > 0 && op[0] == '(' && op[^1] != ')')
            {
                selector = new StringBuilder(op);
                unmatched = j;
                continue;
            }
            if (selector is not null)
            {
                selector.Append(' ').Append(op);
                if (op.Length > 0 && op[^1] == ')')
                {
                    merged.Add(selector.ToString());
                    selector = null;
                    unmatched = -1;
                }
                continue;
            }
            merged.Add(op);
        }
        return selector is null ? merged : null;
    }

    /// <summary>Applies one user rule (Redis's ACLSetUser); returns null or the error text.</summary>
    public string? Apply(string op, bool pubsubDefaultAllChannels)
    {
        if (op.Length == 0) return null;
        if (op.Equals("on", StringComparison.OrdinalIgnoreCase)) Enabled = true;
        else if (op.Equals("off", StringComparison.OrdinalIgnoreCase)) Enabled = false;
        else if (op.Equals("skip-sanitize-payload", StringComparison.OrdinalIgnoreCase)) Sanitize = 2;
        else if (op.Equals("sanitize-payload", StringComparison.OrdinalIgnoreCase)) Sanitize = 1;
        else if (op.Equals("nopass", StringComparison.OrdinalIgnoreCase))
        {
            NoPass = true;
            Passwords.Clear();
        }
        else if (op.Equals("resetpass", StringComparison.OrdinalIgnoreCase))
        {
            NoPass = false;
            Passwords.Clear();
        }
        else if (op[0] is '>' or '#')
        {
            string hash;
            if (op[0] == '>') hash = KvAcl.HashPassword(Encoding.UTF8.GetBytes(op[1..]));
            else
            {
                hash = op[1..];
                if (!KvAcl.IsValidHash(hash)) return KvAcl.ErrBadHash;
            }
            if (!Passwords.Contains(hash)) Passwords.Add(hash);
            NoPass = false;
        }
        else if (op[0] is '<' or '!')
        {
            string hash;
            if (op[0] == '<') hash = KvAcl.HashPassword(Encoding.UTF8.GetBytes(op[1..]));
            else
            {
                hash = op[1..];
                if (!KvAcl.IsValidHash(hash)) return KvAcl.ErrBadHash;
            }
            if (!Passwords.Remove(hash)) return "The password you are trying to remove from the user does not exist";
        }
        else if (op[0] == '(' && op[^1] == ')')
        {
            // Redis's aclCreateSelectorFromOpSet: a new selector (no keys, no channels, no commands) with the rules inside.
            var selector = new AclSelector();
            if (pubsubDefaultAllChannels) selector.Apply("allchannels");
            foreach (string inner in op[1..^1].Split([' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (selector.Apply(inner) is { } error) return error;
            }
            Selectors.Add(selector);
        }
        else if (op.Equals("clearselectors", StringComparison.OrdinalIgnoreCase)) Selectors.Clear();
        else if (op.Equals("reset", StringComparison.OrdinalIgnoreCase))
        {
            Apply("resetpass", pubsubDefaultAllChannels);
            Apply("resetkeys", pubsubDefaultAllChannels);
            Apply("resetchannels", pubsubDefaultAllChannels);
            if (pubsubDefaultAllChannels) Apply("allchannels", pubsubDefaultAllChannels);
            Enabled = false;
            Sanitize = 1;
            Root.Apply("-@all");
            Selectors.Clear();
        }
        else return Root.Apply(op);
        return null;
    }

    /// <summary>Redis's ACLDescribeUser.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(Enabled ? "on " : "off ");
        if (NoPass) sb.Append("nopass ");
        if (Sanitize == 2) sb.Append("skip-sanitize-payload ");
        if (Sanitize == 1) sb.Append("sanitize-payload ");
        foreach (string p in Passwords) sb.Append('#').Append(p).Append(' ');
        sb.Append(Root.Describe());
        foreach (AclSelector x in Selectors) sb.Append(" (").Append(x.Describe()).Append(')');
        return sb.ToString();
    }
}

/// <summary>One ACL LOG entry (Redis's ACLLogEntry).</summary>
public sealed class KvAclLogEntry
{
    internal long Count;
    internal KvAclDenial Reason;
    internal string Context = "toplevel";
    internal string Object = "";
    internal string Username = "";
    internal long TimeMs;
    internal string ClientInfo = "";
}

/// <summary>The server's ACL: users (the <c>default</c> user mirrors <c>requirepass</c> as in Redis), rules, checks and
/// the ACL log; Redis 7.0's acl.c without selectors.</summary>
/// <remarks><b>Thread safety</b>: changes are serialized by a lock and publish new immutable user states; checks read
/// the current state without a lock (any domain).</remarks>
public sealed class KvAcl
{
    internal const string ErrUnknown = "Unknown command or category name in ACL";
    internal const string ErrSyntax = "Syntax error";
    internal const string ErrPatternAfterAllKeys = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
    internal const string ErrPatternAfterAllChannels = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";
    internal const string ErrBadHash = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";

    private readonly object _lock = new();
    private SortedDictionary<string, KvAclUser> _users = new(StringComparer.Ordinal);
    private readonly LinkedList<KvAclLogEntry> _log = new();

    /// <summary>Creates the ACL with the default user (<c>on nopass ~* &amp;* +@all</c>, or a password from requirepass).</summary>
    public KvAcl(string? requirePass = null)
    {
        Default = new KvAclUser("default", DefaultState());
        _users["default"] = Default;
        UpdateDefaultUserPassword(requirePass);
    }

    /// <summary>The default user (every new connection is it).</summary>
    public KvAclUser Default { get; }

    /// <summary>The ACL file (aclfile directive) for ACL LOAD / SAVE, or null.</summary>
    public string? AclFile { get; set; }

    /// <summary>Maximum ACL LOG entries (acllog-max-len).</summary>
    public int LogMaxLength { get; set; } = 128;

    /// <summary>Redis's <c>acl-pubsub-default</c>: true (<c>allchannels</c>) gives users created afterwards, their
    /// <c>(...)</c> selectors and <c>reset</c> the <c>&amp;*</c> channel pattern; false (<c>resetchannels</c>, the 7.0
    /// default) gives them none. Existing users keep their channels.</summary>
    public bool PubsubDefaultAllChannels
    {
        get => Volatile.Read(ref _pubsubDefaultAllChannels);
        set => Volatile.Write(ref _pubsubDefaultAllChannels, value);
    }

    private bool _pubsubDefaultAllChannels;

    /// <summary>A new user's state (Redis's ACLCreateUser: off, no rules; the root selector gets acl-pubsub-default).</summary>
    private AclUserState NewState(bool allChannels)
    {
        var s = new AclUserState();
        if (allChannels) s.Apply("allchannels", allChannels);
        return s;
    }

    /// <summary>Whether authentication is required of new connections (the default user has a password or is off).</summary>
    public bool AuthRequired => !Default.NoPassEnabled;

    private static AclUserState DefaultState()
    {
        var s = new AclUserState();
        s.Apply("+@all", false);
        s.Apply("~*", false);
        s.Apply("&*", false);
        s.Apply("on", false);
        s.Apply("nopass", false);
        return s;
    }

    /// <summary>requirepass: resets the default user's passwords to this one, or nopass (Redis's ACLUpdateDefaultUserPassword).</summary>
    public void UpdateDefaultUserPassword(string? password)
    {
        lock (_lock)
        {
            AclUserState s = Default.State.Clone();
            s.Apply("resetpass", false);
            s.Apply(string.IsNullOrEmpty(password) ? "nopass" : ">" + password, false);
            Default.State = s;
        }
    }

    internal static bool HasSpaces(string s)
    {
        foreach (char c in s) if (char.IsWhiteSpace(c) || c == '\0') return true;
        return false;
    }

    internal static string HashPassword(ReadOnlySpan<byte> cleartext) => Convert.ToHexStringLower(SHA256.HashData(cleartext));

    internal static bool IsValidHash(string hash)
    {
        if (hash.Length != 64) return false;
        foreach (char c in hash) if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'))) return false;
        return true;
    }

    /// <summary>Finds a user by exact name.</summary>
    public KvAclUser? Find(string name)
    {
        lock (_lock) return _users.GetValueOrDefault(name);
    }

    /// <summary>The users in name order (as Redis's rax).</summary>
    public List<KvAclUser> Users()
    {
        lock (_lock) return [.. _users.Values];
    }

    /// <summary>Checks user and password (Redis's ACLCheckUserCredentials); the user, or null.</summary>
    public KvAclUser? Authenticate(string name, ReadOnlySpan<byte> password)
    {
        KvAclUser? u = Find(name);
        if (u is null) return null;
        AclUserState s = u.State;
        if (!s.Enabled) return null;
        if (s.NoPass) return u;
        byte[] hashed = Encoding.ASCII.GetBytes(HashPassword(password));
        bool ok = false;
        foreach (string p in s.Passwords) ok |= CryptographicOperations.FixedTimeEquals(hashed, Encoding.ASCII.GetBytes(p));
        return ok ? u : null;
    }

    /// <summary>ACL SETUSER: applies every rule to a copy and publishes it, or changes nothing.</summary>
    /// <returns>Null on success, otherwise the error reply (without '-').</returns>
    public string? SetUser(string name, IReadOnlyList<string> rules) => SetUser(name, rules, out _);

    /// <summary>ACL SETUSER; <paramref name="changed"/> is the user created or changed (null on error).</summary>
    public string? SetUser(string name, IReadOnlyList<string> rules, out KvAclUser? changed)
    {
        changed = null;
        if (HasSpaces(name)) return "ERR Usernames can't contain spaces or null characters";
        if (AclUserState.MergeSelectorArguments(rules, out int unmatched) is not { } merged)
        {
            return $"ERR Unmatched parenthesis in acl selector starting at '{rules[unmatched]}'.";
        }
        rules = merged;
        lock (_lock)
        {
            bool allChannels = PubsubDefaultAllChannels;
            KvAclUser? u = _users.GetValueOrDefault(name);
            AclUserState temp = u?.State.Clone() ?? NewState(allChannels);
            foreach (string rule in rules)
            {
                if (temp.Apply(rule, allChannels) is { } error) return $"ERR Error in ACL SETUSER modifier '{rule}': {error}";
            }
            if (u is null) _users[name] = u = new KvAclUser(name, temp);
            else u.State = temp;
            changed = u;
            return null;
        }
    }

    /// <summary>The configuration file's users (Redis's ACLLoadConfiguredUsers): each is created (the default user is
    /// reset), then given its rules.</summary>
    public void LoadConfiguredUsers(IReadOnlyList<IReadOnlyList<string>> users, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(users);
        foreach (IReadOnlyList<string> line in users)
        {
            string name = line[0];
            // A new user starts empty; the default one (which exists) is reset first. A bad rule stops the start with
            // Redis's message (the caller exits).
            List<string> rules = [.. line.Skip(1)];
            if (AclUserState.MergeSelectorArguments(rules, out int unmatched) is not { } merged)
            {
                throw new KvConfigException($"Error loading ACL rule '{rules[unmatched]}' for the user named '{name}': Unmatched parenthesis in acl selector starting at '{rules[unmatched]}'.");
            }
            bool allChannels = PubsubDefaultAllChannels;
            var state = NewState(allChannels);
            if (name == "default") state.Apply("reset", allChannels);
            foreach (string op in merged)
            {
                if (state.Apply(op, allChannels) is { } error) throw new KvConfigException($"Error loading ACL rule '{op}' for the user named '{name}': {error}");
            }
            SetUser(name, ["reset"], out KvAclUser? user);
            user!.State = state;
            if (!state.Enabled)
            {
                log?.Invoke($"The user '{name}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.");
            }
        }
    }

    /// <summary>ACL DELUSER: the number of users removed; their connections are closed (see <see cref="KvAclUser.Deleted"/>).</summary>
    public int DeleteUsers(IReadOnlyList<string> names)
    {
        int deleted = 0;
        lock (_lock)
        {
            foreach (string n in names)
            {
                if (_users.Remove(n, out KvAclUser? u))
                {
                    u.Deleted = true;
                    deleted++;
                }
            }
        }
        return deleted;
    }

    /// <summary>One line of ACL LIST.</summary>
    public static string Describe(KvAclUser user) => "user " + user.Name + " " + user.State.Describe();

    /// <summary>Checks a command for a user (Redis's ACLCheckAllUserCommandPerm with one selector).</summary>
    internal static (KvAclDenial Denial, int Position) Check(KvAclUser user, RedisCommandSpec cmd, KvCommand command, Func<KvCommand, List<int>?> keyFinder)
        => user.State.Check(cmd, command, keyFinder);

    /// <summary>Adds an ACL LOG entry or bumps a matching recent one (Redis's addACLLogEntry).</summary>
    public void AddLog(KvAclDenial reason, string context, string obj, string username, string clientInfo, long nowMs)
    {
        lock (_lock)
        {
            int toScan = 10;
            for (LinkedListNode<KvAclLogEntry>? n = _log.First; n is not null && toScan-- > 0; n = n.Next)
            {
                KvAclLogEntry e = n.Value;
                if (e.Reason == reason && e.Context == context && Math.Abs(e.TimeMs - nowMs) <= 60000 && e.Object == obj && e.Username == username)
                {
                    _log.Remove(n);
                    _log.AddFirst(n);
                    e.ClientInfo = clientInfo;
                    e.TimeMs = nowMs;
                    e.Count++;
                    return;
                }
            }
            _log.AddFirst(new KvAclLogEntry { Count = 1, Reason = reason, Context = context, Object = obj, Username = username, TimeMs = nowMs, ClientInfo = clientInfo });
            while (_log.Count > LogMaxLength) _log.RemoveLast();
        }
    }

    /// <summary>The newest <paramref name="count"/> log entries.</summary>
    public List<KvAclLogEntry> Log(int count)
    {
        lock (_lock) return [.. _log.Take(count)];
    }

    /// <summary>ACL LOG RESET.</summary>
    public void ResetLog()
    {
        lock (_lock) _log.Clear();
    }

    /// <summary>The ACL file text (ACL SAVE): one <c>user</c> line per user, in name order.</summary>
    public string SaveText()
    {
        var sb = new StringBuilder();
        foreach (KvAclUser u in Users()) sb.Append(Describe(u)).Append('\n');
        return sb.ToString();
    }

    /// <summary>ACL LOAD / startup: replaces every user by the file's, or changes nothing and returns the errors
    /// (Redis's ACLLoadFromFile texts).</summary>
    public string? LoadText(string text, string fileName)
    {
        var errors = new StringBuilder();
        var users = new SortedDictionary<string, AclUserState>(StringComparer.Ordinal);
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int lineNum = i + 1;
            string line = lines[i].Trim(' ', '\t', '\r', '\n');
            if (line.Length == 0) continue;
            string[] argv = line.Split(' ');
            if (argv[0] != "user" || argv.Length < 2)
            {
                errors.Append($"{fileName}:{lineNum} should start with user keyword followed by the username. ");
                continue;
            }
            if (users.ContainsKey(argv[1]))
            {
                errors.Append($"WARNING: Duplicate user '{argv[1]}' found on line {lineNum}. ");
                continue;
            }
            if (AclUserState.MergeSelectorArguments(argv[2..], out _) is not { } ops)
            {
                errors.Append($"{fileName}:{lineNum}: Unmatched parenthesis in selector definition.");
                continue;
            }
            bool allChannels = PubsubDefaultAllChannels;
            var state = NewState(allChannels);
            bool syntaxError = false;
            for (int j = 0; j < ops.Count; j++)
            {
                string op = ops[j].Trim('\t', '\r', '\n');
                if (state.Apply(op, allChannels) is { } error)
                {
                    if (error == ErrUnknown) errors.Append($"{fileName}:{lineNum}: Error in applying operation '{op}': {error}. ");
                    else if (!syntaxError)
                    {
                        errors.Append($"{fileName}:{lineNum}: {error}. ");
                        syntaxError = true;
                    }
                }
            }
            users[argv[1]] = state;
        }
        if (errors.Length > 0) return errors.Append("WARNING: ACL errors detected, no change to the previously active ACL rules was performed").ToString();
        lock (_lock)
        {
            var next = new SortedDictionary<string, KvAclUser>(StringComparer.Ordinal);
            foreach ((string name, AclUserState state) in users)
            {
                if (name == "default") continue;
                next[name] = new KvAclUser(name, state);
            }
            Default.State = users.GetValueOrDefault("default") ?? DefaultState();
            next["default"] = Default;
            foreach ((string name, KvAclUser old) in _users) if (!ReferenceEquals(old, Default)) old.Deleted = true;
            _users = next;
        }
        return null;
    }
}
