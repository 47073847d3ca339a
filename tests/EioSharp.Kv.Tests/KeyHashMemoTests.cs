using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The one-entry key hash memo the keyspace table and the blocked-key sets hash through (issue 12, session 15):
/// whatever it remembers, it must return the key's own hash.</summary>
public class KeyHashMemoTests
{
    private static int Expected(string key) => ByteArrayComparer.Instance.GetHashCode(Encoding.UTF8.GetBytes(key));

    [Fact]
    public void Every_hash_is_the_comparers_hash_of_that_key_whatever_was_hashed_before()
    {
        var memo = new KeyHashMemo();
        string longKey = new('x', KeyHashMemo.MaxKey + 1);
        string[] keys =
        [
            "ping", "ping", "pong", "ping", "pinh", "", "", "pin", "ping", longKey, "ping", longKey, longKey,
            new string('x', KeyHashMemo.MaxKey), new string('x', KeyHashMemo.MaxKey), new string('y', KeyHashMemo.MaxKey), "a",
        ];
        foreach (string key in keys)
        {
            Assert.Equal(Expected(key), memo.Hash(Encoding.UTF8.GetBytes(key)));
        }
    }

    [Fact]
    public void A_key_in_a_buffer_that_is_overwritten_is_hashed_by_its_new_bytes()
    {
        var memo = new KeyHashMemo();
        byte[] buffer = Encoding.UTF8.GetBytes("key:1");
        Assert.Equal(Expected("key:1"), memo.Hash(buffer));
        buffer[4] = (byte)'2'; // the same array, same length, other bytes (a receive buffer reused)
        Assert.Equal(Expected("key:2"), memo.Hash(buffer));
    }

    [Fact]
    public void The_keyspace_finds_and_removes_keys_hashed_in_any_order()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 300; i++)
        {
            Assert.Equal("+OK\r\n", h.Run("SET", "k" + i, "v" + i)); // grows the table (rehash) as it goes
        }

        for (int i = 297; i >= 0; i -= 3)
        {
            Assert.Equal(":1\r\n", h.Run("DEL", "k" + i));
        }

        for (int i = 0; i < 300; i++)
        {
            Assert.Equal(i % 3 == 0 ? "$-1\r\n" : $"${("v" + i).Length}\r\nv{i}\r\n", h.Run("GET", "k" + i));
        }
    }
}
