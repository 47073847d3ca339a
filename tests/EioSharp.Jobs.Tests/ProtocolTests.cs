namespace EioSharp.Jobs.Tests;

public class ProtocolTests
{
    [Theory]
    [InlineData("10", 10)]
    [InlineData("0", 0)]
    [InlineData("  92 ", 92)]
    [InlineData("007", 7)]
    public void Seed_form_parses_n(string line, int n)
    {
        var r = JobsProtocol.Parse(line);
        Assert.Equal(JobsRequestKind.Fib, r.Kind);
        Assert.Null(r.Id);
        Assert.Equal(n, r.N);
    }

    [Theory]
    [InlineData("93")]
    [InlineData("-1")]
    [InlineData("+5")]
    [InlineData("1.5")]
    [InlineData("abc")]
    [InlineData("0x10")]
    [InlineData("99999999999999999999999")]
    [InlineData("2147483648")]
    public void Seed_form_rejects_invalid_numbers(string line)
    {
        var r = JobsProtocol.Parse(line);
        Assert.Equal(JobsRequestKind.Invalid, r.Kind);
        Assert.Null(r.Id);
        Assert.Equal("Error: Invalid number\n", JobsProtocol.Fail(r, r.Error!));
    }

    [Fact]
    public void N_above_92_is_an_error_naming_the_limit_not_an_overflow()
    {
        var r = JobsProtocol.Parse("x FIB 93");
        Assert.Equal(JobsRequestKind.Invalid, r.Kind);
        Assert.Equal("x", r.Id);
        Assert.Contains("at most 92", r.Error);
        Assert.StartsWith("x ERR n must be at most 92", JobsProtocol.Fail(r, r.Error!));
    }

    [Theory]
    [InlineData("a1 FIB 32", "a1", 32)]
    [InlineData("req-7 fib 0", "req-7", 0)]
    [InlineData("x.y:z_1   FIB   92", "x.y:z_1", 92)]
    public void Tagged_form_parses_id_and_n(string line, string id, int n)
    {
        var r = JobsProtocol.Parse(line);
        Assert.Equal(JobsRequestKind.Fib, r.Kind);
        Assert.Equal(id, r.Id);
        Assert.Equal(n, r.N);
    }

    [Theory]
    [InlineData("a FIB -3", "a", "Invalid number")]
    [InlineData("a FIB abc", "a", "Invalid number")]
    [InlineData("a FIB 1e3", "a", "Invalid number")]
    [InlineData("a FOO 3", "a", "unknown command")]
    [InlineData("a FIB 3 4", "a", "unknown command")]
    [InlineData("a FIB", "a", "unknown command")]
    public void Tagged_form_errors_carry_the_id(string line, string id, string message)
    {
        var r = JobsProtocol.Parse(line);
        Assert.Equal(JobsRequestKind.Invalid, r.Kind);
        Assert.Equal(id, r.Id);
        Assert.Contains(message, r.Error);
        Assert.StartsWith($"{id} ERR ", JobsProtocol.Fail(r, r.Error!));
    }

    [Fact]
    public void Id_too_long_or_with_bad_characters_gets_no_tag()
    {
        string longId = new('i', JobsProtocol.MaxIdLength + 1);
        foreach (var line in new[] { $"{longId} FIB 3", "a/b FIB 3", "a\tb FIB 3" })
        {
            var r = JobsProtocol.Parse(line);
            Assert.Equal(JobsRequestKind.Invalid, r.Kind);
            Assert.Null(r.Id);
        }

        var ok = JobsProtocol.Parse($"{new string('i', JobsProtocol.MaxIdLength)} FIB 3");
        Assert.Equal(JobsRequestKind.Fib, ok.Kind);
    }

    [Theory]
    [InlineData("PING", null)]
    [InlineData("ping", null)]
    [InlineData(" PING ", null)]
    [InlineData("p1 PING", "p1")]
    public void Ping(string line, string? id)
    {
        var r = JobsProtocol.Parse(line);
        Assert.Equal(JobsRequestKind.Ping, r.Kind);
        Assert.Equal(id, r.Id);
    }

    [Fact]
    public void Stats()
    {
        Assert.Equal(JobsRequestKind.Stats, JobsProtocol.Parse("STATS").Kind);
        Assert.Equal(JobsRequestKind.Stats, JobsProtocol.Parse("stats").Kind);
        Assert.Equal(JobsRequestKind.StatsReset, JobsProtocol.Parse("STATS RESET").Kind);
        Assert.Equal(JobsRequestKind.StatsReset, JobsProtocol.Parse("stats reset").Kind);
    }

    [Fact]
    public void Replies()
    {
        var seed = JobsProtocol.Parse("10");
        var tagged = JobsProtocol.Parse("t FIB 10");
        Assert.Equal("Result: 55\n", JobsProtocol.Ok(seed, 55));
        Assert.Equal("t OK 55\n", JobsProtocol.Ok(tagged, 55));
        Assert.Equal("t BUSY\n", JobsProtocol.Busy(tagged));
        Assert.Equal("Error: Busy\n", JobsProtocol.Busy(seed));
        Assert.Equal("Error: Invalid number\n", JobsProtocol.Fail(seed, "whatever"));
        Assert.Equal("t ERR boom\n", JobsProtocol.Fail(tagged, "boom"));
    }
}
