using System.Text;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Issue 13: CONFIG SET appendonly at run time, as Redis's startAppendOnly/stopAppendOnly: turning it on rewrites
/// the whole keyspace into the file (writes made meanwhile are appended and kept), then appends; turning it off closes the
/// file, and later writes are not in it. A restart with appendonly yes then has exactly the writes made while it was on.</summary>
public sealed class AppendOnlyToggleTests
{
    private static string Persistence(RespConnection c) => c.Call("INFO", "persistence").Text!;

    [Fact]
    public void Appendonly_turned_on_writes_the_keyspace_and_off_stops_appending()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no"))
        using (var c = new RespConnection(server.Port))
        {
            for (int i = 0; i < 200; i++) Assert.Equal("+OK", c.Call("SET", "k" + i, "v" + i).ToString());
            Assert.Equal(":3", c.Call("RPUSH", "list", "a", "b", "c").ToString());
            Assert.Equal("+OK", c.Call("SELECT", "3").ToString());
            Assert.Equal(":1", c.Call("SADD", "set3", "m").ToString());
            Assert.Equal("+OK", c.Call("SELECT", "0").ToString());
            Assert.False(File.Exists(dir.AofPath));

            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "yes").ToString());
            Assert.Equal("*[$\"appendonly\", $\"yes\"]", c.Call("CONFIG", "GET", "appendonly").ToString());
            Assert.Contains("aof_enabled:1", Persistence(c), StringComparison.Ordinal);
            Assert.Equal("+OK", c.Call("SET", "during", "1").ToString());
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(Persistence(c) is var p && p.Contains("aof_rewrites:1", StringComparison.Ordinal) && p.Contains("aof_rewrite_in_progress:0", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < deadline, "the rewrite after CONFIG SET appendonly yes did not finish: " + Persistence(c));
                Thread.Sleep(50);
            }

            Assert.Equal("+OK", c.Call("SET", "after-rewrite", "1").ToString());
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "no").ToString());
            Assert.Equal("+OK", c.Call("SET", "after-off", "1").ToString());
            Assert.Equal(":1", c.Call("DEL", "k0").ToString()); // not in the file either: k0 comes back after the restart
            Assert.Contains("aof_enabled:0", Persistence(c), StringComparison.Ordinal);
            string text = Encoding.Latin1.GetString(File.ReadAllBytes(dir.AofPath));
            Assert.Contains("after-rewrite", text, StringComparison.Ordinal);
            Assert.DoesNotContain("after-off", text, StringComparison.Ordinal);
            Assert.Equal(0, server.Terminate());
        }

        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes"))
        using (var c = new RespConnection(server.Port))
        {
            for (int i = 0; i < 200; i++) Assert.Equal("$\"v" + i + "\"", c.Call("GET", "k" + i).ToString());
            Assert.Equal("*[$\"a\", $\"b\", $\"c\"]", c.Call("LRANGE", "list", "0", "-1").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "during").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "after-rewrite").ToString());
            Assert.Equal("$nil", c.Call("GET", "after-off").ToString());
            Assert.Equal(":203", c.Call("DBSIZE").ToString());
            Assert.Equal("+OK", c.Call("SELECT", "3").ToString());
            Assert.Equal("*[$\"m\"]", c.Call("SMEMBERS", "set3").ToString());
            Assert.Equal(0, server.Terminate());
        }
    }
}
