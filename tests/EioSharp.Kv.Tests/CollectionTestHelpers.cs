using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>Reply builders and a canonical dump of a store's contents for the hash and set tests.</summary>
internal static class Replies
{
    public const string Ok = "+OK\r\n";
    public const string Nil = "$-1\r\n";
    public const string WrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

    public static string Bulk(string s) => $"${Encoding.UTF8.GetByteCount(s)}\r\n{s}\r\n";

    public static string Int(long n) => $":{n}\r\n";

    public static string Err(string s) => $"-{s}\r\n";

    public static string Array(params string[] bulks) => $"*{bulks.Length}\r\n" + string.Concat(bulks.Select(Bulk));

    public static string Set3(params string[] bulks) => $"~{bulks.Length}\r\n" + string.Concat(bulks.Select(Bulk));

    /// <summary>Every key of every database: type, encoding, expiry and contents (hash pairs and set members sorted).</summary>
    public static SortedDictionary<string, string> Dump(KvStore store, long now)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (KvSnapshotEntry e in store.CreateSnapshot(now))
        {
            string contents = e.Value switch
            {
                byte[] s => "string:" + Encoding.Latin1.GetString(s),
                KvHash h => "hash/" + h.Encoding + ":" + string.Join(",", h.Entries().Select(p => Encoding.Latin1.GetString(p.Key) + "=" + Encoding.Latin1.GetString(p.Value)).Order(StringComparer.Ordinal)),
                KvSet s => "set/" + s.Encoding + ":" + string.Join(",", s.Members().Select(m => Encoding.Latin1.GetString(m)).Order(StringComparer.Ordinal)),
                KvObject o => o.Type + "/" + o.Encoding,
                _ => "?",
            };
            result[$"{e.Db}/{Encoding.Latin1.GetString(e.Key)}"] = contents + " ttl:" + e.ExpireAtUnixMs;
        }
        return result;
    }

    /// <summary>Runs commands with an AOF buffer sink; returns the log.</summary>
    public static byte[] RunLogged(StoreHarness h, IEnumerable<string[]> commands)
    {
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        foreach (string[] c in commands)
        {
            h.Store.Execute(KvCommand.Create(c), h.Now, new RespWriter(new ArrayBufferWriter<byte>()), sink);
            h.Now += 3;
        }
        return log.WrittenSpan.ToArray();
    }

    /// <summary>Asserts that replaying <paramref name="log"/>, and replaying an AOF rewrite of the store, both give the store's contents.</summary>
    public static void AssertReplaysEqual(StoreHarness h, byte[] log, bool compareEncodings = true)
    {
        var replayed = new KvStore();
        AofLoadResult result = AofLoader.Load(log, replayed, h.Now);
        Assert.False(result.IsTruncated);
        Assert.Equal(Normalize(Dump(h.Store, h.Now), compareEncodings), Normalize(Dump(replayed, h.Now), compareEncodings));

        var rewrite = new ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, rewrite);
        var rewritten = new KvStore();
        AofLoader.Load(rewrite.WrittenSpan, rewritten, h.Now);
        Assert.Equal(Normalize(Dump(h.Store, h.Now), compareEncodings), Normalize(Dump(rewritten, h.Now), compareEncodings));
    }

    private static SortedDictionary<string, string> Normalize(SortedDictionary<string, string> dump, bool encodings)
    {
        if (encodings) return dump;
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in dump)
        {
            int slash = v.IndexOf('/', StringComparison.Ordinal), colon = v.IndexOf(':', StringComparison.Ordinal);
            result[k] = slash >= 0 && slash < colon ? v[..slash] + v[colon..] : v;
        }
        return result;
    }
}

/// <summary>Records keyspace events.</summary>
internal sealed class EventRecorder : IKvKeyspaceObserver
{
    public List<string> Events { get; } = [];

    public void OnKeyChanged(int db, ReadOnlySpan<byte> key, KvEventClass eventClass, string eventName) =>
        Events.Add($"{eventName}:{Encoding.UTF8.GetString(key)}");

    public void OnDatabaseChanged(int db) => Events.Add($"db:{db}");
}
