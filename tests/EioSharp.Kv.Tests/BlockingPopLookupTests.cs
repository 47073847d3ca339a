using System.Globalization;
using System.Text;
using EioSharp.Kv;
using static EioSharp.Kv.Tests.StoreClient;

namespace EioSharp.Kv.Tests;

/// <summary>BLPOP/BRPOP look each key up once per try (session 31, h181): a BLPOP whose keys hold no list blocks without a
/// second lookup, and a blocked pop's serve finds its list in one lookup (missing keys, other types and expired keys
/// skipped, an expired key removed as before). The replies, the AOF and the keyspace must be as with two lookups.</summary>
public class BlockingPopLookupTests
{
    [Fact]
    public void A_pop_on_missing_keys_blocks_and_is_served_from_the_first_key_that_gets_a_list()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(2);
        Assert.Equal("", Run(h, a, "BLPOP", "k1", "k2", "0"));
        Assert.Equal(1, h.Store.BlockedClients);
        Assert.Equal(":1\r\n", Run(h, w, "RPUSH", "k2", "x"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k2", "x"), a.Take());
        Assert.Equal(":0\r\n", Run(h, w, "EXISTS", "k2"));
        Assert.Contains("LPOP k2", h.Logged);
    }

    [Fact]
    public void A_pop_whose_later_key_holds_a_list_is_served_at_once_past_a_missing_key()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(2);
        Assert.Equal(":2\r\n", Run(h, w, "RPUSH", "k2", "x", "y"));
        Assert.Equal(Pop("k2", "y"), Run(h, a, "BRPOP", "k1", "k2", "0"));
        Assert.Equal(0, h.Store.BlockedClients);
    }

    [Fact]
    public void A_key_of_another_type_before_any_list_is_refused_and_one_after_the_list_is_not_reached()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(2);
        Assert.Equal("+OK\r\n", Run(h, w, "SET", "s", "v"));
        Assert.StartsWith("-WRONGTYPE", Run(h, a, "BLPOP", "k1", "s", "0"));
        Assert.Equal(0, h.Store.BlockedClients);
        Assert.Equal(":1\r\n", Run(h, w, "RPUSH", "k1", "x"));
        Assert.Equal(Pop("k1", "x"), Run(h, a, "BLPOP", "k1", "s", "0"));
    }

    [Fact]
    public void A_blocked_pop_is_not_served_by_its_key_turning_into_another_type_and_is_served_once_it_holds_a_list()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(2);
        Assert.Equal("", Run(h, a, "BLPOP", "k", "0"));
        Assert.Equal("+OK\r\n", Run(h, w, "SET", "k", "v")); // signals k: the serve finds a string and waits on
        Assert.Empty(h.Store.TakeUnblocked());
        Assert.Equal("", a.Take());
        Assert.Equal(1, h.Store.BlockedClients);
        Assert.Equal(":1\r\n", Run(h, w, "DEL", "k"));
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k", "x"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k", "x"), a.Take());
    }

    [Fact]
    public void An_expired_list_is_removed_by_the_pop_that_finds_it_and_the_pop_blocks()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(2);
        Assert.Equal(":1\r\n", Run(h, w, "RPUSH", "k", "old"));
        Assert.Equal(":1\r\n", Run(h, w, "PEXPIRE", "k", "10"));
        h.Now += 100;
        Assert.Equal("", Run(h, a, "BLPOP", "k", "0"));
        Assert.Equal(1, h.Store.BlockedClients);
        Assert.Equal(":0\r\n", Run(h, w, "DBSIZE")); // removed by the pop's lookup (DBSIZE looks nothing up)
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k", "new"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k", "new"), a.Take());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("007")]
    [InlineData("1")]
    [InlineData("42")]
    [InlineData("999999999999999")]
    [InlineData("1000000000000000")]
    [InlineData("12345678901234567890")]
    [InlineData("1.5")]
    [InlineData("0.001")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("-0")]
    [InlineData("1e3")]
    [InlineData("inf")]
    [InlineData(" 1")]
    [InlineData("1 ")]
    [InlineData("")]
    [InlineData("1a")]
    [InlineData("0x10")]
    public void A_double_of_plain_digits_parses_as_the_general_parser_does(string text)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(text);
        // The general path, as TryParseDouble parsed every input before the digits' fast path.
        double expected = 0;
        bool expectedOk = text.Length > 0 && text[0] != ' ' && text[^1] != ' ' &&
            double.TryParse(text, NumberStyles.Float & ~(NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite), CultureInfo.InvariantCulture, out expected);
        if (!expectedOk && text == "inf")
        {
            (expectedOk, expected) = (true, double.PositiveInfinity);
        }

        bool ok = RespNumbers.TryParseDouble(bytes, out double value);
        Assert.Equal(expectedOk, ok);
        if (ok)
        {
            Assert.Equal(BitConverter.DoubleToInt64Bits(expected), BitConverter.DoubleToInt64Bits(value));
        }
    }
}
