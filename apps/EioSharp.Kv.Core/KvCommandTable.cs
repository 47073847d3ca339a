using System.Collections.Frozen;

namespace EioSharp.Kv;

/// <summary>Every command the server knows.</summary>
#pragma warning disable CS1591 // the names are the commands
public enum KvCommandId
{
    /// <summary>A data command, executed by the store through its handler.</summary>
    Data,
    Ping, Echo, Quit, Hello, Auth, Client, Command, Config, Info,
    Monitor, Time, LastSave, Role, Shutdown, BgRewriteAof, SlowLog, Latency, // KvConnectionState.Admin.cs
    Acl, // KvConnectionState.Acl.cs
    Multi, Subscribe, Unsubscribe, PSubscribe, PUnsubscribe, SSubscribe, SUnsubscribe, Publish, SPublish, PubSub, // KvConnectionState.PubSub.cs
    Cluster, ReadOnly, ReadWrite, Asking, Module, ReplicaOf, Sync, PSync, ReplConf, Failover, Lolwut, PfSelfTest, // KvConnectionState.Replication.cs
    Debug, // KvDebugCommand.cs (the server runs it)
    Migrate, // KvMigrate.cs (the server runs it: network I/O); in EXEC and scripts KvStore.MigrateBlocking.cs
}
#pragma warning restore CS1591

/// <summary>Properties of a command, as in Redis's command table.</summary>
[Flags]
public enum KvCommandFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>May modify the keyspace: must be logged to the AOF and answered only after it is durable.</summary>
    Write = 1,
    /// <summary>Only reads the keyspace.</summary>
    ReadOnly = 2,
    /// <summary>Handled by the connection (<see cref="KvConnectionState"/>), never by the store.</summary>
    Connection = 4,
    /// <summary>Allowed before authentication.</summary>
    NoAuth = 8,
    /// <summary>A script that may write (EVAL, EVALSHA, FCALL): not flagged write, as in Redis 7.0.15's COMMAND INFO;
    /// whether it writes is decided from the script's flags before it runs, or at its first write.</summary>
    Script = 16,
}

/// <summary>Where a command is executed.</summary>
public enum KvRoute
{
    /// <summary>The name is not a known command: the connection replies with Redis's unknown-command error.</summary>
    Unknown,
    /// <summary>Handled on the connection (PING, AUTH, HELLO, CLIENT, INFO...).</summary>
    Connection,
    /// <summary>Executed by the store owner (<see cref="KvStore"/>).</summary>
    Store,
}

/// <summary>A command table entry.</summary>
/// <param name="Id">The command.</param>
/// <param name="Name">Lower-case name, as used in Redis's error messages.</param>
/// <param name="Arity">Redis arity: positive means exactly that many arguments (with the name), negative means at least -Arity.</param>
/// <param name="Flags">Routing and durability flags.</param>
/// <param name="FirstKey">Index of the first key argument (0: none), for COMMAND replies.</param>
/// <param name="LastKey">Index of the last key argument (-1: the last argument).</param>
/// <param name="KeyStep">Distance between key arguments.</param>
public sealed record KvCommandInfo(KvCommandId Id, string Name, int Arity, KvCommandFlags Flags, int FirstKey, int LastKey, int KeyStep)
{
    /// <summary>Executes the command in the store (null for connection commands).</summary>
    internal KvHandler? Handler { get; init; }

    /// <summary>Whether the command may modify data.</summary>
    public bool IsWrite => (Flags & KvCommandFlags.Write) != 0;

    /// <summary>Where the command runs.</summary>
    public KvRoute Route => Handler is null ? KvRoute.Connection : KvRoute.Store;

    /// <summary>Whether <paramref name="argumentCount"/> (with the name) satisfies <see cref="Arity"/>.</summary>
    public bool AcceptsArgumentCount(int argumentCount) => Arity >= 0 ? argumentCount == Arity : argumentCount >= -Arity;

    /// <summary>Redis's command table entry for this entry's name, once <see cref="KvRedisCommands.Lookup(KvCommand, KvCommandInfo)"/>
    /// looked it up (per command with two arguments or more, before: a frozen dictionary probe by reference, ~160
    /// instructions per SET, session 26). Not part of the record's equality (<see cref="RedisSpecSlot"/>).</summary>
    internal RedisSpecSlot RedisSpec;
}

/// <summary>A lazily filled slot of <see cref="KvCommandInfo"/> that every slot equals, so that the record's generated
/// equality and hash stay those of its declared members. Written once by whichever domain looks first (the same value).</summary>
internal struct RedisSpecSlot : IEquatable<RedisSpecSlot>
{
    /// <summary>Null: not looked up yet; else the <see cref="RedisCommandSpec"/>, or a marker for none / not in the table.</summary>
    internal object? Value;

    /// <inheritdoc/>
    public readonly bool Equals(RedisSpecSlot other) => true;

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is RedisSpecSlot;

    /// <inheritdoc/>
    public override readonly int GetHashCode() => 0;
}

/// <summary>Executes one data command (see <see cref="KvCommandTable"/>).</summary>
internal delegate void KvHandler(KvStore store, in KvStore.Context ctx);

/// <summary>The command table: name lookup, routing, write classification.</summary>
public static class KvCommandTable
{
    private const int MaxNameLength = 32; // longer than any command name; longer input is unknown without a lookup

    private static readonly KvCommandInfo[] s_connection =
    [
        C(KvCommandId.Ping, "ping", -1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Echo, "echo", 2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Quit, "quit", -1, KvCommandFlags.Connection | KvCommandFlags.NoAuth, 0, 0, 0),
        C(KvCommandId.Hello, "hello", -1, KvCommandFlags.Connection | KvCommandFlags.NoAuth, 0, 0, 0),
        C(KvCommandId.Auth, "auth", -2, KvCommandFlags.Connection | KvCommandFlags.NoAuth, 0, 0, 0),
        C(KvCommandId.Client, "client", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Command, "command", -1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Config, "config", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Info, "info", -1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Monitor, "monitor", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Time, "time", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.LastSave, "lastsave", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Role, "role", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Shutdown, "shutdown", -1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.BgRewriteAof, "bgrewriteaof", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.SlowLog, "slowlog", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Latency, "latency", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Acl, "acl", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Cluster, "cluster", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.ReadOnly, "readonly", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.ReadWrite, "readwrite", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Asking, "asking", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Module, "module", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.ReplicaOf, "replicaof", 3, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.ReplicaOf, "slaveof", 3, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Sync, "sync", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.PSync, "psync", -3, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.ReplConf, "replconf", -1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Failover, "failover", -1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Lolwut, "lolwut", -1, KvCommandFlags.Connection | KvCommandFlags.ReadOnly, 0, 0, 0),
        C(KvCommandId.PfSelfTest, "pfselftest", 1, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Debug, "debug", -2, KvCommandFlags.Connection, 0, 0, 0),
        C(KvCommandId.Migrate, "migrate", -6, KvCommandFlags.Connection | KvCommandFlags.Write, 3, 3, 1),
    ];

    // One list per command family, each defined next to its handlers (KvStore.<Family>.cs).
    private static readonly KvCommandInfo[] s_all =
    [
        .. s_connection,
        .. KvStore.ServerCommands,
        .. KvStore.RdbCommands,
        .. KvStore.StringCommands,
        .. KvStore.BitmapCommands,
        .. KvStore.KeyspaceCommands,
        .. KvStore.HashCommands,
        .. KvStore.ListCommands,
        .. KvStore.SetCommands,
        .. KvStore.ZSetCommands,
        .. KvStore.HyperLogLogCommands,
        .. KvStore.GeoCommands,
        .. KvStore.StreamCommands,
        .. KvStore.BlockingCommands,
        .. KvStore.TransactionCommands,
        .. KvConnectionState.PubSubCommands,
        .. KvStore.ScriptingCommands,
    ];

    private static readonly FrozenDictionary<string, KvCommandInfo> s_byName =
        s_all.ToFrozenDictionary(c => c.Name, StringComparer.OrdinalIgnoreCase);

    private static KvCommandInfo C(KvCommandId id, string name, int arity, KvCommandFlags flags, int first, int last, int step)
        => new(id, name, arity, flags, first, last, step);

    /// <summary>A data command entry: Redis arity and key positions, and the store handler that executes it.</summary>
    internal static KvCommandInfo Data(string name, int arity, KvCommandFlags flags, int first, int last, int step, KvHandler handler)
        => new(KvCommandId.Data, name, arity, flags, first, last, step) { Handler = handler };

    /// <summary>All commands, in table order.</summary>
    public static IReadOnlyList<KvCommandInfo> All => s_all;

    /// <summary>Finds a command by name (ASCII, case-insensitive); null when unknown.</summary>
    /// <remarks>Every command from a client and every redis.call of a script comes here: an open-addressing table keyed
    /// by the name's bytes (hashed with ASCII letters folded to lower case, compared with
    /// <see cref="System.Text.Ascii.EqualsIgnoreCase(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>), with no conversion to
    /// chars and no string hash.</remarks>
    public static KvCommandInfo? Find(ReadOnlySpan<byte> name)
    {
        if (name.Length == 0 || name.Length > MaxNameLength) return null;
        int mask = s_byBytes.Length - 1;
        for (int slot = (int)(FoldedHash(name) & (uint)mask); ; slot = (slot + 1) & mask)
        {
            ref readonly NameSlot entry = ref s_byBytes[slot];
            if (entry.Info is null) return null;
            if (System.Text.Ascii.EqualsIgnoreCase(name, entry.Name)) return entry.Info;
        }
    }

    // FNV-1a over the bytes with ASCII upper-case letters folded to lower case ('A'..'Z' | 0x20); other bytes as they are
    // (a name with one never matches a table name, all lower-case ASCII, and EqualsIgnoreCase decides).
    private static uint FoldedHash(ReadOnlySpan<byte> name)
    {
        uint h = 2166136261;
        foreach (byte b in name)
        {
            uint c = b - (uint)'A' <= 'Z' - 'A' ? (uint)(b | 0x20) : b;
            h = (h ^ c) * 16777619;
        }
        return h;
    }

    // The open-addressing table of Find: a power of two at least four times the command count (short probe runs); an
    // empty slot has no Info.
    private readonly record struct NameSlot(KvCommandInfo? Info, byte[] Name);

    private static readonly NameSlot[] s_byBytes = BuildByBytes();

    private static NameSlot[] BuildByBytes()
    {
        int size = 1;
        while (size < s_all.Length * 4) size <<= 1;
        var slots = new NameSlot[size];
        foreach (KvCommandInfo info in s_all)
        {
            byte[] bytes = System.Text.Encoding.ASCII.GetBytes(info.Name.ToLowerInvariant());
            int slot = (int)(FoldedHash(bytes) & (uint)(size - 1));
            while (slots[slot].Info is not null) slot = (slot + 1) & (size - 1); // names are unique (s_byName would throw)
            slots[slot] = new NameSlot(info, bytes);
        }
        return slots;
    }

    /// <summary>Finds a command by name (case-insensitive); null when unknown.</summary>
    public static KvCommandInfo? Find(string name) => s_byName.TryGetValue(name, out var info) ? info : null;

    /// <summary>Where <paramref name="command"/> runs: on the connection, in the store, or unknown.</summary>
    public static KvRoute Route(KvCommand command) => command.Info?.Route ?? KvRoute.Unknown;

    /// <summary>Whether the command named <paramref name="name"/> may modify data (false for unknown names).</summary>
    public static bool IsWrite(ReadOnlySpan<byte> name) => Find(name)?.IsWrite ?? false;

    /// <summary>Whether <paramref name="command"/> may modify data (false for unknown commands).</summary>
    public static bool IsWrite(KvCommand command) => command.Info?.IsWrite ?? false;
}
