using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class KvStoreTests
{
    private const string Ok = "+OK\r\n";
    private const string Nil = "$-1\r\n";
    private static string Bulk(string s) => $"${System.Text.Encoding.UTF8.GetByteCount(s)}\r\n{s}\r\n";
    private static string Int(long n) => $":{n}\r\n";
    private static string Err(string s) => $"-{s}\r\n";

    [Fact]
    public void Get_set_basics_and_arity()
    {
        var h = new StoreHarness();
        Assert.Equal(Nil, h.Run("GET", "a"));
        Assert.Equal(Ok, h.Run("SET", "a", "1"));
        Assert.Equal(Bulk("1"), h.Run("get", "a"));
        Assert.Equal(Int(1), h.Run("DBSIZE"));
        Assert.Equal(Err("ERR wrong number of arguments for 'get' command"), h.Run("GET"));
        Assert.Equal(Err("ERR wrong number of arguments for 'get' command"), h.Run("GET", "a", "b"));
        Assert.Equal(Err("ERR wrong number of arguments for 'set' command"), h.Run("SET", "a"));
        Assert.Equal(Err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "), h.Run("FOO", "a", "b"));
        Assert.Equal(Err("ERR unknown command 'PING', with args beginning with: "), h.Run("PING"));
    }

    [Fact]
    public void Set_options()
    {
        var h = new StoreHarness();
        Assert.Equal(Nil, h.Run("SET", "a", "1", "XX"));
        Assert.Equal(Ok, h.Run("SET", "a", "1", "NX"));
        Assert.Equal(Nil, h.Run("SET", "a", "2", "NX"));
        Assert.Equal(Bulk("1"), h.Run("SET", "a", "3", "XX", "GET"));
        Assert.Equal(Bulk("3"), h.Run("SET", "a", "4", "nx", "get")); // NX GET on existing key: old value, not set
        Assert.Equal(Bulk("3"), h.Run("GET", "a"));
        Assert.Equal(Nil, h.Run("SET", "new", "v", "GET"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SET", "a", "1", "NX", "XX"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SET", "a", "1", "EX", "10", "PX", "100"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SET", "a", "1", "EX"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SET", "a", "1", "KEEPTTL", "EX", "1"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SET", "a", "1", "BOGUS"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("SET", "a", "1", "EX", "x"));
        Assert.Equal(Err("ERR invalid expire time in 'set' command"), h.Run("SET", "a", "1", "EX", "0"));
        Assert.Equal(Err("ERR invalid expire time in 'set' command"), h.Run("SET", "a", "1", "PX", "-5"));
        Assert.Equal(Err("ERR invalid expire time in 'set' command"), h.Run("SET", "a", "1", "EX", "9223372036854775"));
        Assert.Equal(Err("ERR invalid expire time in 'set' command"), h.Run("SET", "a", "1", "PX", "9223372036854775807"));
        Assert.Equal(Err("ERR invalid expire time in 'setex' command"), h.Run("SETEX", "a", "0", "v"));
        Assert.Equal(Bulk("3"), h.Run("GET", "a"));
    }

    [Fact]
    public void Set_expiry_forms_and_keepttl()
    {
        var h = new StoreHarness();
        long now = h.Now;
        h.Run("SET", "ex", "v", "EX", "10");
        h.Run("SET", "px", "v", "PX", "1500");
        h.Run("SET", "exat", "v", "EXAT", ((now / 1000) + 100).ToString());
        h.Run("SET", "pxat", "v", "PXAT", (now + 2000).ToString());
        Assert.Equal(Int(10), h.Run("TTL", "ex"));
        Assert.Equal(Int(1500), h.Run("PTTL", "px"));
        Assert.Equal(Int(2), h.Run("TTL", "px")); // rounded like Redis
        Assert.Equal(Int((now / 1000 + 100) * 1000 - now), h.Run("PTTL", "exat"));
        Assert.Equal(Int(now + 2000), h.Run("PEXPIRETIME", "pxat"));
        Assert.Equal(Ok, h.Run("SET", "ex", "w", "KEEPTTL"));
        Assert.Equal(Int(10_000), h.Run("PTTL", "ex"));
        Assert.Equal(Ok, h.Run("SET", "ex", "w"));
        Assert.Equal(Int(-1), h.Run("TTL", "ex"));
        Assert.Equal(Int(-2), h.Run("TTL", "missing"));
        Assert.Equal(3, h.Store.ExpiringCount);
        h.Run("SETEX", "se", "5", "v");
        h.Run("PSETEX", "pse", "50", "v");
        Assert.Equal(Int(5000), h.Run("PTTL", "se"));
        Assert.Equal(Int(50), h.Run("PTTL", "pse"));
    }

    [Fact]
    public void Lazy_expiry()
    {
        var h = new StoreHarness();
        h.Run("SET", "a", "1", "PX", "100");
        h.Now += 100;
        Assert.Equal(Bulk("1"), h.Run("GET", "a")); // expires strictly after its time, like Redis
        h.Now += 1;
        Assert.Equal(Nil, h.Run("GET", "a"));
        Assert.Equal(0, h.Store.Count);
        Assert.Equal(1, h.Store.ExpiredKeys);
        h.Run("SET", "b", "1", "PX", "10");
        h.Now += 11;
        Assert.Equal(Int(0), h.Run("EXISTS", "b"));
        Assert.Equal("+none\r\n", h.Run("TYPE", "b"));
    }

    [Fact]
    public void Active_expiry_samples_and_removes()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 1000; i++) h.Run("SET", "t" + i, "v", "PX", "10");
        for (int i = 0; i < 100; i++) h.Run("SET", "p" + i, "v");
        for (int i = 0; i < 100; i++) h.Run("SET", "l" + i, "v", "EX", "1000");
        Assert.Equal(0, h.Store.ActiveExpireCycle(h.Now, 1000));
        h.Now += 20;
        int removed = h.Store.ActiveExpireCycle(h.Now, 100);
        Assert.InRange(removed, 1, 100);
        int total = removed;
        for (int round = 0; round < 1000 && h.Store.Count > 200; round++) total += h.Store.ActiveExpireCycle(h.Now, 200);
        Assert.Equal(1000, total);
        Assert.Equal(200, h.Store.Count);
        Assert.Equal(100, h.Store.ExpiringCount);
        Assert.Equal(0, h.Store.ActiveExpireCycle(h.Now, 0));
    }

    [Fact]
    public void Setnx_getset_getdel_mget_mset_msetnx()
    {
        var h = new StoreHarness();
        Assert.Equal(Int(1), h.Run("SETNX", "a", "1"));
        Assert.Equal(Int(0), h.Run("SETNX", "a", "2"));
        Assert.Equal(Bulk("1"), h.Run("GETSET", "a", "3"));
        Assert.Equal(Nil, h.Run("GETSET", "b", "x"));
        Assert.Equal(Bulk("x"), h.Run("GETDEL", "b"));
        Assert.Equal(Nil, h.Run("GETDEL", "b"));
        Assert.Equal(Ok, h.Run("MSET", "k1", "v1", "k2", "v2"));
        Assert.Equal("*3\r\n$2\r\nv1\r\n$-1\r\n$2\r\nv2\r\n", h.Run("MGET", "k1", "nope", "k2"));
        Assert.Equal(Err("ERR wrong number of arguments for 'mset' command"), h.Run("MSET", "k1", "v1", "k2"));
        Assert.Equal(Err("ERR wrong number of arguments for 'msetnx' command"), h.Run("MSETNX", "k1", "v1", "k2"));
        Assert.Equal(Int(0), h.Run("MSETNX", "k3", "v3", "k1", "x"));
        Assert.Equal(Nil, h.Run("GET", "k3"));
        Assert.Equal(Int(1), h.Run("MSETNX", "k3", "v3", "k4", "v4"));
        Assert.Equal(Bulk("v4"), h.Run("GET", "k4"));
    }

    [Fact]
    public void Del_unlink_exists_type()
    {
        var h = new StoreHarness();
        h.Run("MSET", "a", "1", "b", "2", "c", "3");
        Assert.Equal(Int(3), h.Run("EXISTS", "a", "a", "b", "zz"));
        Assert.Equal(Int(2), h.Run("DEL", "a", "b", "zz"));
        Assert.Equal(Int(1), h.Run("UNLINK", "c", "a"));
        Assert.Equal(Int(0), h.Run("DEL", "a"));
        Assert.Equal(0, h.Store.Count);
        h.Run("SET", "s", "v");
        Assert.Equal("+string\r\n", h.Run("TYPE", "s"));
        Assert.Equal("+none\r\n", h.Run("TYPE", "x"));
        Assert.Equal(Ok, h.Run("FLUSHALL"));
        Assert.Equal(Int(0), h.Run("DBSIZE"));
        Assert.Equal(Ok, h.Run("FLUSHDB", "ASYNC"));
        Assert.Equal(Err("ERR syntax error"), h.Run("FLUSHDB", "LATER"));
    }

    [Fact]
    public void Incr_family()
    {
        var h = new StoreHarness();
        Assert.Equal(Int(1), h.Run("INCR", "n"));
        Assert.Equal(Int(11), h.Run("INCRBY", "n", "10"));
        Assert.Equal(Int(10), h.Run("DECR", "n"));
        Assert.Equal(Int(-5), h.Run("DECRBY", "n", "15"));
        Assert.Equal(Bulk("-5"), h.Run("GET", "n"));
        h.Run("SET", "s", "abc");
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("INCR", "s"));
        h.Run("SET", "s", " 1");
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("INCR", "s"));
        h.Run("SET", "s", "01");
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("INCR", "s"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("INCRBY", "n", "1.5"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("INCRBY", "n", "99999999999999999999"));
        h.Run("SET", "max", long.MaxValue.ToString());
        Assert.Equal(Err("ERR increment or decrement would overflow"), h.Run("INCR", "max"));
        h.Run("SET", "min", long.MinValue.ToString());
        Assert.Equal(Err("ERR increment or decrement would overflow"), h.Run("DECR", "min"));
        Assert.Equal(Err("ERR decrement would overflow"), h.Run("DECRBY", "n", long.MinValue.ToString()));
        Assert.Equal(Int(long.MinValue + 1), h.Run("INCRBY", "min", "1"));
        // INCR keeps the TTL.
        h.Run("SET", "t", "5", "EX", "100");
        h.Run("INCR", "t");
        Assert.Equal(Int(100), h.Run("TTL", "t"));
    }

    [Fact]
    public void Incrbyfloat()
    {
        var h = new StoreHarness();
        Assert.Equal(Bulk("10.5"), h.Run("INCRBYFLOAT", "f", "10.5"));
        Assert.Equal(Bulk("10.6"), h.Run("INCRBYFLOAT", "f", "0.1"));
        Assert.Equal(Bulk("5.6"), h.Run("INCRBYFLOAT", "f", "-5"));
        h.Run("SET", "g", "0.1");
        Assert.Equal(Bulk("0.3"), h.Run("INCRBYFLOAT", "g", "0.2"));
        h.Run("SET", "e", "5.0e3");
        Assert.Equal(Bulk("5200"), h.Run("INCRBYFLOAT", "e", "2.0e2"));
        h.Run("SET", "i", "3");
        Assert.Equal(Bulk("4.5"), h.Run("INCRBYFLOAT", "i", "1.5"));
        // Checked against redis-server 7.0: plain digits, never an exponent.
        Assert.Equal(Bulk("100000000000000000000"), h.Run("INCRBYFLOAT", "big20", "1e20"));
        Assert.Equal(Bulk("0.00001"), h.Run("INCRBYFLOAT", "tiny", "1e-5"));
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("INCRBYFLOAT", "i", "abc"));
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("INCRBYFLOAT", "i", " 1"));
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("INCRBYFLOAT", "i", "nan"));
        h.Run("SET", "s", "x");
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("INCRBYFLOAT", "s", "1"));
        Assert.Equal(Err("ERR increment would produce NaN or Infinity"), h.Run("INCRBYFLOAT", "i", "inf"));
        h.Run("SET", "big", "1e308");
        Assert.StartsWith("$309\r\n199999999999999999993371759311691291321120199694831134415594", h.Run("INCRBYFLOAT", "big", "1e308")); // long double, as Redis
        h.Run("SET", "big", "1.1e4932");
        Assert.Equal(Err("ERR increment would produce NaN or Infinity"), h.Run("INCRBYFLOAT", "big", "1.1e4932"));
        h.Run("SET", "x", "542");
        Assert.Equal(Bulk("542.09999999999999998"), h.Run("INCRBYFLOAT", "x", "0.1")); // redis-server 7.0's reply
        h.Run("SET", "t", "1", "EX", "100");
        h.Run("INCRBYFLOAT", "t", "1");
        Assert.Equal(Int(100), h.Run("TTL", "t"));
        Assert.Equal(Int(1), h.Run("INCR", "t2"));
        Assert.Equal(Bulk("3"), h.Run("INCRBYFLOAT", "t2", "2"));
    }

    [Fact]
    public void Append_and_strlen()
    {
        var h = new StoreHarness(new KvStore(new RespLimits { MaxBulkLength = 10 }));
        Assert.Equal(Int(5), h.Run("APPEND", "a", "hello"));
        Assert.Equal(Int(10), h.Run("APPEND", "a", "world"));
        Assert.Equal(Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"), h.Run("APPEND", "a", "!"));
        Assert.Equal(Int(10), h.Run("STRLEN", "a"));
        Assert.Equal(Int(0), h.Run("STRLEN", "missing"));
        Assert.Equal(Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"), h.Run("SETRANGE", "a", "10", "x"));
    }

    [Fact]
    public void Getrange_edge_cases()
    {
        var h = new StoreHarness();
        h.Run("SET", "s", "This is a string");
        Assert.Equal(Bulk("This"), h.Run("GETRANGE", "s", "0", "3"));
        Assert.Equal(Bulk("ing"), h.Run("GETRANGE", "s", "-3", "-1"));
        Assert.Equal(Bulk("This is a string"), h.Run("GETRANGE", "s", "0", "-1"));
        Assert.Equal(Bulk("string"), h.Run("GETRANGE", "s", "10", "100"));
        Assert.Equal(Bulk(""), h.Run("GETRANGE", "s", "5", "3"));
        Assert.Equal(Bulk(""), h.Run("GETRANGE", "s", "-1", "-5"));
        Assert.Equal(Bulk("T"), h.Run("GETRANGE", "s", "-100", "-16"));
        Assert.Equal(Bulk("This"), h.Run("GETRANGE", "s", "-100", "3"));
        Assert.Equal(Bulk(""), h.Run("GETRANGE", "s", "100", "200"));
        Assert.Equal(Bulk(""), h.Run("GETRANGE", "missing", "0", "-1"));
        Assert.Equal(Bulk("is"), h.Run("SUBSTR", "s", "2", "3"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("GETRANGE", "s", "a", "1"));
        h.Run("SET", "e", "");
        Assert.Equal(Bulk(""), h.Run("GETRANGE", "e", "0", "-1"));
    }

    [Fact]
    public void Setrange_edge_cases()
    {
        var h = new StoreHarness();
        h.Run("SET", "k", "Hello World");
        Assert.Equal(Int(11), h.Run("SETRANGE", "k", "6", "Redis"));
        Assert.Equal(Bulk("Hello Redis"), h.Run("GET", "k"));
        Assert.Equal(Int(7), h.Run("SETRANGE", "pad", "5", "ab"));
        Assert.Equal(Bulk("\0\0\0\0\0ab"), h.Run("GET", "pad"));
        Assert.Equal(Int(0), h.Run("SETRANGE", "none", "5", ""));
        Assert.Equal(Int(0), h.Run("EXISTS", "none"));
        Assert.Equal(Int(11), h.Run("SETRANGE", "k", "100", ""));
        Assert.Equal(Err("ERR offset is out of range"), h.Run("SETRANGE", "k", "-1", "x"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("SETRANGE", "k", "x", "x"));
        Assert.Equal(Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"), h.Run("SETRANGE", "k", "536870912", "x"));
        // Fuzz finding: offset + length overflowed a long and slipped past the size check.
        Assert.Equal(Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"), h.Run("SETRANGE", "k", "9223372036854775807", "x"));
        Assert.DoesNotContain(h.Logged, l => l.Contains("none") || l.Contains("100"));
    }

    [Fact]
    public void Expire_family()
    {
        var h = new StoreHarness();
        h.Run("SET", "a", "1");
        Assert.Equal(Int(0), h.Run("EXPIRE", "missing", "10"));
        Assert.Equal(Int(1), h.Run("EXPIRE", "a", "10"));
        Assert.Equal(Int(10), h.Run("TTL", "a"));
        Assert.Equal(Int(1), h.Run("PEXPIRE", "a", "2500"));
        Assert.Equal(Int(2500), h.Run("PTTL", "a"));
        Assert.Equal(Int(1), h.Run("EXPIREAT", "a", (h.Now / 1000 + 50).ToString()));
        Assert.Equal(Int((h.Now / 1000 + 50) * 1000 - h.Now), h.Run("PTTL", "a"));
        Assert.Equal(Int(h.Now / 1000 + 50), h.Run("EXPIRETIME", "a"));
        Assert.Equal(Int(1), h.Run("PERSIST", "a"));
        Assert.Equal(Int(0), h.Run("PERSIST", "a"));
        Assert.Equal(Int(-1), h.Run("PTTL", "a"));
        Assert.Equal(Int(-1), h.Run("EXPIRETIME", "a"));
        Assert.Equal(Int(-2), h.Run("EXPIRETIME", "zz"));
        // Options.
        Assert.Equal(Int(0), h.Run("EXPIRE", "a", "10", "XX"));
        Assert.Equal(Int(1), h.Run("EXPIRE", "a", "10", "NX"));
        Assert.Equal(Int(0), h.Run("EXPIRE", "a", "20", "NX"));
        Assert.Equal(Int(0), h.Run("EXPIRE", "a", "5", "GT"));
        Assert.Equal(Int(1), h.Run("EXPIRE", "a", "20", "GT"));
        Assert.Equal(Int(0), h.Run("EXPIRE", "a", "30", "LT"));
        Assert.Equal(Int(1), h.Run("EXPIRE", "a", "15", "lt"));
        Assert.Equal(Err("ERR NX and XX, GT or LT options at the same time are not compatible"), h.Run("EXPIRE", "a", "1", "NX", "XX"));
        Assert.Equal(Err("ERR GT and LT options at the same time are not compatible"), h.Run("EXPIRE", "a", "1", "GT", "LT"));
        Assert.Equal(Err("ERR Unsupported option FOO"), h.Run("EXPIRE", "a", "1", "FOO"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("EXPIRE", "a", "x"));
        Assert.Equal(Err("ERR invalid expire time in 'expire' command"), h.Run("EXPIRE", "a", "9223372036854775807"));
        Assert.Equal(Err("ERR invalid expire time in 'pexpire' command"), h.Run("PEXPIRE", "a", "9223372036854775807"));
        // A time in the past deletes the key.
        Assert.Equal(Int(1), h.Run("EXPIRE", "a", "-1"));
        Assert.Equal(Int(0), h.Run("EXISTS", "a"));
    }

    [Fact]
    public void Keys_and_patterns()
    {
        var h = new StoreHarness();
        foreach (string k in new[] { "hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "a", "b" }) h.Run("SET", k, "v");
        h.Run("SET", "gone", "v", "PX", "1");
        h.Now += 5;
        Assert.Equal(["h*llo", "hallo", "hello", "hxllo"], Keys(h, "h?llo"));
        Assert.Equal(["h*llo", "hallo", "heeeello", "hello", "hllo", "hxllo"], Keys(h, "h*llo"));
        Assert.Equal(["hallo", "hello"], Keys(h, "h[ae]llo"));
        Assert.Equal(["h*llo", "hxllo"], Keys(h, "h[^ae]llo"));
        Assert.Equal(["hallo", "hello"], Keys(h, "h[a-e]llo"));
        Assert.Equal(["h*llo"], Keys(h, "h\\*llo"));
        Assert.Equal(9 - 1, Keys(h, "*").Length);
        Assert.Empty(Keys(h, "zzz*"));
    }

    private static string[] Keys(StoreHarness h, string pattern)
    {
        string reply = h.Run("KEYS", pattern);
        var parsed = RespReplyParser.Parse(reply);
        return [.. ((List<object?>)parsed!).Select(x => (string)x!).Order(StringComparer.Ordinal)];
    }

    [Fact]
    public void Scan_visits_every_key_once_without_changes()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 1000; i++) h.Run("SET", "key:" + i, "v");
        for (int i = 0; i < 50; i++) h.Run("SET", "other:" + i, "v");
        var seen = new List<string>();
        string cursor = "0";
        int calls = 0;
        do
        {
            var reply = (List<object?>)RespReplyParser.Parse(h.Run("SCAN", cursor, "MATCH", "key:*", "COUNT", "37"))!;
            cursor = (string)reply[0]!;
            seen.AddRange(((List<object?>)reply[1]!).Cast<string>());
            calls++;
        }
        while (cursor != "0");
        Assert.Equal(1000, seen.Count);
        Assert.Equal(1000, seen.Distinct().Count());
        Assert.InRange(calls, 20, 40);
        Assert.Equal(Err("ERR invalid cursor"), h.Run("SCAN", "abc"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SCAN", "0", "COUNT", "0"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SCAN", "0", "BOGUS", "1"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SCAN", "0", "COUNT"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("SCAN", "0", "COUNT", "x"));
        Assert.Equal("*2\r\n$1\r\n0\r\n*0\r\n", h.Run("SCAN", "0", "TYPE", "hash", "COUNT", "10000"));
        var all = (List<object?>)RespReplyParser.Parse(h.Run("SCAN", "0", "TYPE", "string", "COUNT", "10000"))!;
        Assert.Equal(1050, ((List<object?>)all[1]!).Count);
    }

    [Fact]
    public void Scan_guarantee_holds_across_deletes_and_compaction()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 2000; i++) h.Run("SET", "k" + i, "v");
        var seen = new HashSet<string>();
        string cursor = "0";
        int step = 0;
        do
        {
            var reply = (List<object?>)RespReplyParser.Parse(h.Run("SCAN", cursor, "COUNT", "50"))!;
            cursor = (string)reply[0]!;
            foreach (string k in ((List<object?>)reply[1]!).Cast<string>()) seen.Add(k);
            // Delete many keys before the protected ones (k1900..k1999) to force compaction mid-scan,
            // which moves the protected keys to lower slots.
            for (int j = 0; j < 60 && step * 60 + j < 1900; j++) h.Run("DEL", "k" + (step * 60 + j));
            step++;
        }
        while (cursor != "0");
        for (int i = 1900; i < 2000; i++) Assert.Contains("k" + i, seen);
    }

    [Fact]
    public void Randomkey_and_rename()
    {
        var h = new StoreHarness();
        Assert.Equal(Nil, h.Run("RANDOMKEY"));
        h.Run("MSET", "a", "1", "b", "2");
        string r = h.Run("RANDOMKEY");
        Assert.True(r == Bulk("a") || r == Bulk("b"));
        Assert.Equal(Err("ERR no such key"), h.Run("RENAME", "zz", "y"));
        h.Run("PEXPIRE", "a", "5000");
        Assert.Equal(Ok, h.Run("RENAME", "a", "c"));
        Assert.Equal(Int(0), h.Run("EXISTS", "a"));
        Assert.Equal(Bulk("1"), h.Run("GET", "c"));
        Assert.Equal(Int(5000), h.Run("PTTL", "c"));
        Assert.Equal(Ok, h.Run("RENAME", "c", "b")); // overwrites
        Assert.Equal(Bulk("1"), h.Run("GET", "b"));
        Assert.Equal(Int(1), h.Run("DBSIZE"));
        Assert.Equal(Ok, h.Run("RENAME", "b", "b"));
        h.Run("SET", "x", "9");
        Assert.Equal(Int(0), h.Run("RENAMENX", "x", "b"));
        Assert.Equal(Int(1), h.Run("RENAMENX", "x", "y"));
        h.Run("SET", "e", "v", "PX", "1");
        h.Now += 2;
        Assert.Equal(Nil, h.Run("GET", "e"));
        h.Run("SET", "only", "v", "PX", "1");
        h.Run("DEL", "b", "y");
        h.Now += 2;
        Assert.Equal(Nil, h.Run("RANDOMKEY"));
    }

    [Fact]
    public void Binary_safe_keys_and_values()
    {
        var store = new KvStore();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        byte[] key = [0, 1, 2, 255, 13, 10];
        byte[] value = [9, 0, 9];
        store.Execute(KvCommand.Create("SET"u8.ToArray(), key, value), 0, new RespWriter(buffer), null);
        Assert.True(store.TryGetValue(key, 0, out byte[] got));
        Assert.Equal(value, got);
        Assert.False(store.TryGetValue(key.AsSpan(0, 5), 0, out _));
    }

    [Fact]
    public void Batch_replies_in_order()
    {
        var store = new KvStore();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        KvCommand[] batch = [KvCommand.Create("SET", "a", "1"), KvCommand.Create("INCR", "a"), KvCommand.Create("GET", "a"), KvCommand.Create("GET")];
        store.ExecuteBatch(batch, 0, new RespWriter(buffer), null);
        Assert.Equal("+OK\r\n:2\r\n$1\r\n2\r\n-ERR wrong number of arguments for 'get' command\r\n", Resp.Text(buffer.WrittenSpan));
    }

    [Fact]
    public void Resp3_null_replies()
    {
        var h = new StoreHarness { Protocol = 3 };
        Assert.Equal("_\r\n", h.Run("GET", "a"));
    }

    [Fact]
    public void Stats_counters()
    {
        var h = new StoreHarness();
        h.Run("SET", "a", "1");
        h.Run("GET", "a");
        h.Run("GET", "b");
        Assert.Equal(1, h.Store.KeyspaceHits);
        Assert.Equal(1, h.Store.KeyspaceMisses);
        Assert.True(h.Store.UsedBytes > 0);
        var stats = new KvServerStats();
        stats.UpdateFrom(h.Store);
        Assert.Equal(1, stats.Keys);
    }
}
