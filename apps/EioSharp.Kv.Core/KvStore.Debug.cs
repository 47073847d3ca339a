using System.Buffers;
using System.Globalization;

namespace EioSharp.Kv;

/// <summary>The keyspace side of DEBUG (the server's KvDebugCommand runs these on the store owner): OBJECT and RELOAD.</summary>
public sealed partial class KvStore
{
    private bool _reloading;

    /// <summary>DEBUG OBJECT: Redis's status line <c>Value at:&lt;address&gt; refcount:n encoding:e serializedlength:n lru:n
    /// lru_seconds_idle:n</c>, plus the quicklist fields for a list; <c>-ERR no such key</c> when missing. The address is
    /// the value's identity hash (no pointers in .NET); serializedlength is Redis's RDB length for a string (LZF-compressed
    /// as with <see cref="RdbCompression"/>) and our DUMP payload's body for other types; the quicklist fields describe our list (one node while
    /// it is a listpack).</summary>
    /// <param name="session">The connection's session (its database).</param>
    /// <param name="key">The key; not counted as an access.</param>
    /// <param name="nowUnixMs">The current time (an expired key is missing).</param>
    /// <param name="reply">Where the reply goes.</param>
    public void DebugObject(KvSession session, ReadOnlySpan<byte> key, long nowUnixMs, RespWriter reply)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(reply);
        KvEntry? e = Lookup(_dbs[(uint)session.Db < (uint)_dbs.Length ? session.Db : 0], key, nowUnixMs);
        if (e is null)
        {
            reply.WriteError("ERR no such key");
            return;
        }
        object value = e.Value;
        string encoding = EncodingName(e);
        bool shared = value is byte[] s && encoding == "int" && RespNumbers.TryParseInt64(s, out long v) && v is >= 0 and < SharedIntegers;
        long serialized = value is byte[] str ? RdbStringLength(str, encoding == "int", RdbCompression) : KvDump.Serialize(value, RdbCompression).Length - 11;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"Value at:0x7f{(uint)System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(value):x8}00 refcount:{(shared ? SharedRefcount : 1)} encoding:{encoding} serializedlength:{serialized} lru:{e.AccessClock} lru_seconds_idle:{IdleSeconds(e)}");
        if (value is KvList list)
        {
            long bytes = list.EstimateBytes();
            int nodes = encoding == "listpack" ? 1 : (int)Math.Max(1, (bytes + 8191) / 8192); // 8 KB nodes (list-max-listpack-size -2)
            line += string.Create(CultureInfo.InvariantCulture,
                $" ql_nodes:{nodes} ql_avg_node:{(double)list.Length / nodes:0.00} ql_listpack_max:{Encodings.ListMaxListpackSize} ql_compressed:{(Encodings.ListCompressDepth != 0 ? 1 : 0)} ql_uncompressed_size:{bytes}");
        }
        reply.WriteSimpleString(line);
    }

    private static long RdbStringLength(byte[] s, bool isInt, bool compress)
    {
        if (compress && s.Length > 20)
        {
            long written = 0;
            var writer = new RdbWriter(span => written += span.Length, compress, checksum: false);
            writer.WriteString(s);
            writer.Flush();
            return written;
        }
        if (isInt && RespNumbers.TryParseInt64(s, out long v))
        {
            if (v is >= sbyte.MinValue and <= sbyte.MaxValue) return 2;
            if (v is >= short.MinValue and <= short.MaxValue) return 3;
            if (v is >= int.MinValue and <= int.MaxValue) return 5;
        }
        int header = s.Length < 64 ? 1 : s.Length < 16384 ? 2 : 5;
        return header + s.Length;
    }

    /// <summary>DEBUG RELOAD: rewrites the keyspace (every database and the FUNCTION libraries) as AOF commands, empties
    /// the store and replays them, as Redis saves and reloads its RDB. Access times and LFU counters start afresh.</summary>
    /// <param name="nowUnixMs">The current time (expired keys are not carried over).</param>
    /// <returns>The number of keys after the reload.</returns>
    public int ReloadFromRewrite(long nowUnixMs)
    {
        var rewrite = new ArrayBufferWriter<byte>();
        AofRewriter.Write(this, nowUnixMs, rewrite);
        for (int db = 0; db < _dbs.Length; db++)
        {
            _dbs[db].Clear();
            DatabaseChanged(db); // WATCH, as Redis's emptyData signals flushed databases
        }
        _aofDb = -1;
        _reloading = true; // replayed like an AOF at start: no maxmemory refusal
        try
        {
            AofLoader.Load(rewrite.WrittenSpan, this, nowUnixMs);
        }
        finally
        {
            _reloading = false;
        }
        return Count;
    }
}
