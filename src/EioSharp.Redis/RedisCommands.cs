using System.Text;

namespace EioSharp.Redis;

/// <summary>One stream entry: its id and its field/value pairs.</summary>
/// <param name="Id">The entry id (<c>ms-seq</c>).</param>
/// <param name="Fields">The fields in order; empty for an entry deleted while pending (<c>XREADGROUP</c> history, <c>XAUTOCLAIM</c>).</param>
public sealed record StreamEntry(string Id, IReadOnlyList<KeyValuePair<string, byte[]>> Fields)
{
    /// <summary>The value of the first field called <paramref name="name"/>, or null.</summary>
    /// <param name="name">The field name.</param>
    /// <returns>The bytes or null.</returns>
    public byte[]? this[string name]
    {
        get
        {
            foreach (var f in Fields)
            {
                if (f.Key == name)
                {
                    return f.Value;
                }
            }

            return null;
        }
    }

    /// <summary>The value of a field as UTF-8 text, or null.</summary>
    /// <param name="name">The field name.</param>
    /// <returns>The text or null.</returns>
    public string? Text(string name) => this[name] is { } b ? Encoding.UTF8.GetString(b) : null;
}

/// <summary>One pending entry of a consumer group (<c>XPENDING key group start end count</c>).</summary>
/// <param name="Id">The entry id.</param>
/// <param name="Consumer">The consumer that holds it.</param>
/// <param name="Idle">Time since it was last delivered.</param>
/// <param name="DeliveryCount">How many times it was delivered.</param>
public sealed record StreamPendingEntry(string Id, string Consumer, TimeSpan Idle, long DeliveryCount);

/// <summary>The reply of <c>XAUTOCLAIM</c>.</summary>
/// <param name="NextStart">Where the next call should start (<c>0-0</c> when the scan is complete).</param>
/// <param name="Entries">The claimed entries.</param>
/// <param name="DeletedIds">Pending ids whose entries no longer exist (removed from the PEL by the server).</param>
public sealed record StreamAutoClaimResult(string NextStart, IReadOnlyList<StreamEntry> Entries, IReadOnlyList<string> DeletedIds);

/// <summary>Typed helpers for the key, string and stream commands most used (and used by the actor layer).</summary>
/// <remarks>Each helper builds the command and converts the reply; everything else goes through
/// <see cref="IRedisCommands.ExecuteAsync(object[])"/>. Exceptions are those of <c>ExecuteAsync</c>.</remarks>
public static class RedisCommands
{
    /// <summary><c>GET key</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The key.</param>
    /// <returns>The value, or null if the key does not exist.</returns>
    public static async Task<byte[]?> GetAsync(this IRedisCommands redis, string key) => (await redis.ExecuteAsync("GET", key)).Bytes;

    /// <summary><c>GET key</c> as UTF-8 text.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The key.</param>
    /// <returns>The text, or null.</returns>
    public static async Task<string?> GetStringAsync(this IRedisCommands redis, string key) => (await redis.ExecuteAsync("GET", key)).Text;

    /// <summary><c>SET key value [PX ms] [NX|XX]</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The key.</param>
    /// <param name="value">A string, byte array or number.</param>
    /// <param name="expiry">Time to live (millisecond precision); null for none.</param>
    /// <param name="onlyIfNotExists">Adds <c>NX</c>.</param>
    /// <param name="onlyIfExists">Adds <c>XX</c>.</param>
    /// <returns>True if the value was set (false when NX/XX prevented it).</returns>
    public static async Task<bool> SetAsync(this IRedisCommands redis, string key, object value, TimeSpan? expiry = null,
        bool onlyIfNotExists = false, bool onlyIfExists = false)
    {
        var args = new List<object> { "SET", key, value };
        if (expiry is { } e)
        {
            args.AddRange(["PX", Math.Max(1, (long)e.TotalMilliseconds)]);
        }

        if (onlyIfNotExists)
        {
            args.Add("NX");
        }

        if (onlyIfExists)
        {
            args.Add("XX");
        }

        return !(await redis.ExecuteAsync([.. args])).IsNull;
    }

    /// <summary><c>DEL key...</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="keys">The keys.</param>
    /// <returns>How many existed.</returns>
    public static async Task<long> DeleteAsync(this IRedisCommands redis, params string[] keys) =>
        (await redis.ExecuteAsync(["DEL", .. keys])).AsInt64();

    /// <summary><c>INCRBY key n</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The key.</param>
    /// <param name="by">The increment.</param>
    /// <returns>The new value.</returns>
    public static async Task<long> IncrementAsync(this IRedisCommands redis, string key, long by = 1) =>
        (await redis.ExecuteAsync("INCRBY", key, by)).AsInt64();

    /// <summary><c>PUBLISH channel message</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="channel">The channel.</param>
    /// <param name="message">A string or bytes.</param>
    /// <returns>How many subscribers received it.</returns>
    public static async Task<long> PublishAsync(this IRedisCommands redis, string channel, object message) =>
        (await redis.ExecuteAsync("PUBLISH", channel, message)).AsInt64();

    /// <summary>All keys matching a glob pattern, by <c>SCAN</c> (never <c>KEYS</c>).</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="pattern">The glob pattern.</param>
    /// <param name="count">The <c>COUNT</c> hint per call.</param>
    /// <returns>The keys (a key may appear twice if the keyspace was rehashed during the scan).</returns>
    public static async Task<List<string>> ScanAsync(this IRedisCommands redis, string pattern, int count = 1000)
    {
        var keys = new List<string>();
        string cursor = "0";
        do
        {
            var r = await redis.ExecuteAsync("SCAN", cursor, "MATCH", pattern, "COUNT", count);
            cursor = r[0].Text!;
            keys.AddRange(r[1].Elements.Select(e => e.Text!));
        }
        while (cursor != "0");
        return keys;
    }

    /// <summary><c>XADD key [MAXLEN ~ n] * field value ...</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The stream.</param>
    /// <param name="fields">Field names and values (strings, bytes or numbers).</param>
    /// <param name="maxLength">Trims the stream to about this many entries (<c>MAXLEN ~</c>); null keeps everything.</param>
    /// <param name="exactTrim">Uses <c>MAXLEN =</c> (exact, slower) instead of <c>~</c>.</param>
    /// <returns>The new entry's id.</returns>
    public static async Task<string> StreamAddAsync(this IRedisCommands redis, string key, IReadOnlyList<KeyValuePair<string, object>> fields,
        long? maxLength = null, bool exactTrim = false)
    {
        var args = new List<object>(4 + (fields.Count * 2)) { "XADD", key };
        if (maxLength is { } max)
        {
            args.AddRange(["MAXLEN", exactTrim ? "=" : "~", max]);
        }

        args.Add("*");
        foreach (var f in fields)
        {
            args.Add(f.Key);
            args.Add(f.Value);
        }

        return (await redis.ExecuteAsync([.. args])).Text!;
    }

    /// <summary><c>XGROUP CREATE key group id MKSTREAM</c>, treating an existing group as success.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The stream (created empty if missing).</param>
    /// <param name="group">The group name.</param>
    /// <param name="startId"><c>$</c> (new entries only) or <c>0</c> (the whole stream).</param>
    /// <returns>True if created, false if it existed (<c>BUSYGROUP</c>).</returns>
    public static async Task<bool> StreamCreateGroupAsync(this IRedisCommands redis, string key, string group, string startId = "0")
    {
        try
        {
            await redis.ExecuteAsync("XGROUP", "CREATE", key, group, startId, "MKSTREAM");
            return true;
        }
        catch (RedisErrorException e) when (e.Prefix == "BUSYGROUP")
        {
            return false;
        }
    }

    /// <summary><c>XREADGROUP GROUP g c [COUNT n] [BLOCK ms] STREAMS key id</c> for one stream.</summary>
    /// <param name="redis">Where to run it (blocking reads on a <see cref="RedisClient"/> take a pooled connection).</param>
    /// <param name="key">The stream.</param>
    /// <param name="group">The group.</param>
    /// <param name="consumer">The consumer name.</param>
    /// <param name="count">The most entries to return.</param>
    /// <param name="block">How long to block when nothing is new; null does not block, <see cref="TimeSpan.Zero"/> blocks forever.</param>
    /// <param name="id"><c>&gt;</c> for new entries; an id for this consumer's pending history.</param>
    /// <returns>The entries (empty on timeout).</returns>
    public static async Task<List<StreamEntry>> StreamReadGroupAsync(this IRedisCommands redis, string key, string group, string consumer,
        int count = 100, TimeSpan? block = null, string id = ">")
    {
        var args = new List<object> { "XREADGROUP", "GROUP", group, consumer, "COUNT", count };
        if (block is { } b)
        {
            args.AddRange(["BLOCK", (long)b.TotalMilliseconds]);
        }

        args.AddRange(["STREAMS", key, id]);
        var reply = await redis.ExecuteAsync([.. args]);
        var entries = new List<StreamEntry>();
        if (reply.IsNull)
        {
            return entries;
        }

        if (reply.Kind == RedisReplyKind.Map)
        {
            for (int i = 1; i < reply.Elements.Count; i += 2)
            {
                ParseEntries(reply[i], entries);
            }
        }
        else
        {
            foreach (var stream in reply.Elements)
            {
                ParseEntries(stream[1], entries);
            }
        }

        return entries;
    }

    /// <summary><c>XACK key group id...</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The stream.</param>
    /// <param name="group">The group.</param>
    /// <param name="ids">The entry ids.</param>
    /// <returns>How many were pending and are now acknowledged.</returns>
    public static async Task<long> StreamAckAsync(this IRedisCommands redis, string key, string group, params string[] ids) =>
        (await redis.ExecuteAsync(["XACK", key, group, .. ids])).AsInt64();

    /// <summary><c>XAUTOCLAIM key group consumer min-idle start COUNT n</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The stream.</param>
    /// <param name="group">The group.</param>
    /// <param name="consumer">The consumer that takes the entries.</param>
    /// <param name="minIdle">Only entries idle at least this long.</param>
    /// <param name="start">The scan start id (<c>0-0</c> first).</param>
    /// <param name="count">The most entries per call.</param>
    /// <returns>The claimed entries and the next start.</returns>
    public static async Task<StreamAutoClaimResult> StreamAutoClaimAsync(this IRedisCommands redis, string key, string group, string consumer,
        TimeSpan minIdle, string start = "0-0", int count = 100)
    {
        var r = await redis.ExecuteAsync("XAUTOCLAIM", key, group, consumer, (long)minIdle.TotalMilliseconds, start, "COUNT", count);
        var entries = new List<StreamEntry>();
        ParseEntries(r[1], entries);
        var deleted = r.Elements.Count > 2 ? r[2].Elements.Select(e => e.Text!).ToList() : [];
        return new StreamAutoClaimResult(r[0].Text!, entries, deleted);
    }

    /// <summary><c>XPENDING key group start end count [consumer]</c> (the extended form).</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The stream.</param>
    /// <param name="group">The group.</param>
    /// <param name="count">The most entries.</param>
    /// <param name="consumer">Only this consumer's entries; null for all.</param>
    /// <returns>The pending entries, oldest first.</returns>
    public static async Task<List<StreamPendingEntry>> StreamPendingAsync(this IRedisCommands redis, string key, string group, int count = 100,
        string? consumer = null)
    {
        var args = new List<object> { "XPENDING", key, group, "-", "+", count };
        if (consumer is not null)
        {
            args.Add(consumer);
        }

        var r = await redis.ExecuteAsync([.. args]);
        return r.Elements.Select(e => new StreamPendingEntry(e[0].Text!, e[1].Text!, TimeSpan.FromMilliseconds(e[2].Integer), e[3].Integer)).ToList();
    }

    /// <summary><c>XLEN key</c>.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="key">The stream.</param>
    /// <returns>The number of entries.</returns>
    public static async Task<long> StreamLengthAsync(this IRedisCommands redis, string key) => (await redis.ExecuteAsync("XLEN", key)).AsInt64();

    /// <summary><c>XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS key... &gt;...</c> over several streams.</summary>
    /// <param name="redis">Where to run it.</param>
    /// <param name="keys">The streams (in a cluster they must share a slot).</param>
    /// <param name="group">The group (existing on every stream).</param>
    /// <param name="consumer">The consumer.</param>
    /// <param name="count">The most entries per stream.</param>
    /// <param name="block">How long to block; null does not block.</param>
    /// <returns>Each entry with the stream it came from.</returns>
    public static async Task<List<(string Key, StreamEntry Entry)>> StreamReadGroupManyAsync(this IRedisCommands redis, IReadOnlyList<string> keys,
        string group, string consumer, int count = 100, TimeSpan? block = null)
    {
        var args = new List<object>(8 + (keys.Count * 2)) { "XREADGROUP", "GROUP", group, consumer, "COUNT", count };
        if (block is { } b)
        {
            args.AddRange(["BLOCK", Math.Max(1, (long)b.TotalMilliseconds)]);
        }

        args.Add("STREAMS");
        args.AddRange(keys);
        args.AddRange(keys.Select(_ => (object)">"));
        var reply = await redis.ExecuteAsync([.. args]);
        var result = new List<(string, StreamEntry)>();
        if (reply.IsNull)
        {
            return result;
        }

        var tmp = new List<StreamEntry>();
        bool map = reply.Kind == RedisReplyKind.Map;
        for (int i = 0; i < reply.Elements.Count; i += map ? 2 : 1)
        {
            var (key, entries) = map ? (reply[i].Text!, reply[i + 1]) : (reply[i][0].Text!, reply[i][1]);
            tmp.Clear();
            ParseEntries(entries, tmp);
            result.AddRange(tmp.Select(e => (key, e)));
        }

        return result;
    }

    private static void ParseEntries(RedisReply list, List<StreamEntry> into)
    {
        foreach (var e in list.Elements)
        {
            var fields = new List<KeyValuePair<string, byte[]>>();
            if (e.Elements.Count > 1 && !e[1].IsNull)
            {
                var f = e[1];
                for (int i = 0; i + 1 < f.Elements.Count; i += 2)
                {
                    fields.Add(new(f[i].Text!, f[i + 1].Bytes ?? []));
                }
            }

            into.Add(new StreamEntry(e[0].Text!, fields));
        }
    }
}
