using System.Collections;
using System.Net;

namespace EioSharp.StatsdFilter.Tests;

public class OptionsTests
{
    private static StatsdFilterOptions Parse(string[] args, params (string Key, string Value)[] env)
    {
        var dictionary = new Hashtable();
        foreach ((string key, string value) in env)
        {
            dictionary[key] = value;
        }

        return StatsdFilterOptions.Parse(args, dictionary);
    }

    [Fact]
    public void Defaults()
    {
        StatsdFilterOptions options = Parse([]);
        Assert.Equal(Environment.ProcessorCount, options.Threads);
        Assert.Equal(8125, options.ListenPort);
        Assert.Equal(IPAddress.Loopback, options.BindAddress);
        Assert.Equal("localhost", options.TargetHost);
        Assert.Equal(8126, options.TargetPort);
        Assert.Equal("", options.Blocklist);
        Assert.Same(FilterRules.Empty, options.Rules);
        Assert.Equal(1432, options.Mtu);
        Assert.False(options.Tcp);
        Assert.False(options.Verbose);
        Assert.Equal("statsd_filter", options.MetricsPrefix);
        Assert.Equal(TimeSpan.FromSeconds(10), options.MetricsInterval);
        Assert.False(options.ShowHelp);
        Assert.Equal(2, options.Fibers);
        Assert.False(options.ReusePort);
        Assert.Equal(8125, StatsdFilterOptions.Parse([], null).ListenPort);
    }

    [Fact]
    public void Backend_defaults_to_auto_and_rejects_unknown_names()
    {
        Assert.Equal("auto", Parse([]).Backend);
        Assert.Equal("uring", Parse(["--backend", "URING"]).Backend);
        Assert.Equal("epoll", Parse(["--backend", "epoll"]).Backend);
        var e = Assert.Throws<StatsdFilterOptionsException>(() => Parse(["--backend", "kqueue"]));
        Assert.Contains("--backend", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Environment_variables_of_the_seed()
    {
        StatsdFilterOptions options = Parse([],
            ("num_threads", "3"), ("listen_port", "9125"), ("target_host", "statsd.local"),
            ("target_port", "9126"), ("blocklist", "a,b.*"), ("LISTEN_PORT", "1"));
        Assert.Equal(3, options.Threads);
        Assert.Equal(9125, options.ListenPort);
        Assert.Equal("statsd.local", options.TargetHost);
        Assert.Equal(9126, options.TargetPort);
        Assert.Equal("a,b.*", options.Blocklist);
        Assert.Equal(BlocklistSyntax.Seed, options.BlocklistSyntax);

        // The seed's meaning: literal prefixes of the line, no special characters.
        Assert.True(options.Rules.ShouldDrop("abc"u8));
        Assert.True(options.Rules.ShouldDrop("b.*x"u8));
        Assert.False(options.Rules.ShouldDrop("b.c"u8));
    }

    [Fact]
    public void Blocklist_syntax_can_be_chosen_explicitly_by_flag_environment_or_response_file()
    {
        StatsdFilterOptions seedFlag = Parse(["--blocklist-syntax", "seed", "--blocklist", "foo,bar"]);
        Assert.Equal(BlocklistSyntax.Seed, seedFlag.BlocklistSyntax);
        Assert.True(seedFlag.Rules.ShouldDrop("foobar"u8));

        StatsdFilterOptions rulesEnv = Parse([], ("blocklist", "foo,b.*"), ("blocklist_syntax", "rules"));
        Assert.Equal(BlocklistSyntax.Rules, rulesEnv.BlocklistSyntax);
        Assert.False(rulesEnv.Rules.ShouldDrop("foobar"u8));
        Assert.True(rulesEnv.Rules.ShouldDrop("b.c"u8));

        StatsdFilterOptions rulesFlagOverEnv = Parse(["--blocklist-syntax=rules"], ("blocklist", "foo"));
        Assert.False(rulesFlagOverEnv.Rules.ShouldDrop("foobar"u8));
        Assert.True(rulesFlagOverEnv.Rules.ShouldDrop("foo"u8));

        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file, ["--blocklist-syntax", "seed", "--blocklist", "foo", "--listen-port", "9000"]);
            StatsdFilterOptions fromFile = Parse(["@" + file]);
            Assert.Equal(9000, fromFile.ListenPort);
            Assert.Equal(BlocklistSyntax.Seed, fromFile.BlocklistSyntax);
            Assert.True(fromFile.Rules.ShouldDrop("foo.x"u8));
        }
        finally
        {
            File.Delete(file);
        }

        var ex = Assert.Throws<StatsdFilterOptionsException>(() => Parse(["--blocklist-syntax", "regex"]));
        Assert.Contains("--blocklist-syntax", ex.Message);
    }

    [Fact]
    public void Empty_environment_values_are_ignored()
    {
        StatsdFilterOptions options = Parse([], ("listen_port", ""), ("blocklist", ""));
        Assert.Equal(8125, options.ListenPort);
    }

    [Fact]
    public void Flags_win_over_environment()
    {
        StatsdFilterOptions options = Parse(
            ["--threads", "2", "--listen-port=7000", "--target-host", "up", "--target-port", "7001", "--blocklist", "x"],
            ("num_threads", "3"), ("listen_port", "9125"), ("target_host", "statsd.local"),
            ("target_port", "9126"), ("blocklist", "a,b.*"));
        Assert.Equal(2, options.Threads);
        Assert.Equal(7000, options.ListenPort);
        Assert.Equal("up", options.TargetHost);
        Assert.Equal(7001, options.TargetPort);
        Assert.Equal("x", options.Blocklist);
        Assert.False(options.Rules.ShouldDrop("b.c"u8));
        Assert.True(options.Rules.ShouldDrop("x"u8));
    }

    [Fact]
    public void Empty_blocklist_flag_clears_the_environment_blocklist()
    {
        StatsdFilterOptions options = Parse(["--blocklist", ""], ("blocklist", "a"));
        Assert.Same(FilterRules.Empty, options.Rules);
    }

    [Fact]
    public void Other_flags()
    {
        StatsdFilterOptions options = Parse(
            ["--bind", "::1", "--mtu", "512", "--tcp", "--verbose", "--metrics-prefix", "edge.filter",
             "--metrics-interval", "1500ms", "--fibers", "3", "--reuseport"]);
        Assert.Equal(3, options.Fibers);
        Assert.True(options.ReusePort);
        Assert.Equal(IPAddress.IPv6Loopback, options.BindAddress);
        Assert.Equal(512, options.Mtu);
        Assert.True(options.Tcp);
        Assert.True(options.Verbose);
        Assert.Equal("edge.filter", options.MetricsPrefix);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.MetricsInterval);
        Assert.False(Parse(["--tcp=false"]).Tcp);
        Assert.True(Parse(["--help"]).ShowHelp);
        Assert.Contains("--metrics-interval", StatsdFilterOptions.Usage);
    }

    [Fact]
    public void Debug_commands_are_off_unless_enabled_and_documented_in_the_help()
    {
        Assert.False(Parse([]).DebugCommands);
        Assert.True(Parse(["--enable-debug-commands"]).DebugCommands);
        Assert.False(Parse(["--enable-debug-commands=false"]).DebugCommands);
        Assert.Contains("--enable-debug-commands", StatsdFilterOptions.Usage);
        Assert.Contains("_debug.crash_forwarder", StatsdFilterOptions.Usage);
    }

    [Theory]
    [InlineData("10s", 10_000)]
    [InlineData("500ms", 500)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("0.5s", 500)]
    [InlineData("00:00:30", 30_000)]
    [InlineData("0", 0)]
    public void Metrics_interval_formats(string text, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), Parse(["--metrics-interval", text]).MetricsInterval);

    [Theory]
    [InlineData(new[] { "--threads", "0" }, "--threads")]
    [InlineData(new[] { "--fibers", "0" }, "--fibers")]
    [InlineData(new[] { "--threads", "x" }, "--threads")]
    [InlineData(new[] { "--listen-port", "65536" }, "--listen-port")]
    [InlineData(new[] { "--listen-port", "-1" }, "--listen-port")]
    [InlineData(new[] { "--target-port", "0" }, "--target-port")]
    [InlineData(new[] { "--target-host", "" }, "--target-host")]
    [InlineData(new[] { "--bind", "localhost" }, "--bind")]
    [InlineData(new[] { "--mtu", "0" }, "--mtu")]
    [InlineData(new[] { "--mtu", "70000" }, "--mtu")]
    [InlineData(new[] { "--blocklist", "regex:(" }, "--blocklist")]
    [InlineData(new[] { "--metrics-prefix", "a:b" }, "--metrics-prefix")]
    [InlineData(new[] { "--metrics-prefix", "" }, "--metrics-prefix")]
    [InlineData(new[] { "--metrics-interval", "10" }, "--metrics-interval")]
    [InlineData(new[] { "--metrics-interval", "-1s" }, "--metrics-interval")]
    [InlineData(new[] { "--metrics-interval", "soon" }, "--metrics-interval")]
    [InlineData(new[] { "--tcp=maybe" }, "--tcp")]
    [InlineData(new[] { "--threads" }, "--threads")]
    [InlineData(new[] { "--nope" }, "--nope")]
    [InlineData(new[] { "stray" }, "stray")]
    public void Bad_flags_name_the_option(string[] args, string named)
    {
        var ex = Assert.Throws<StatsdFilterOptionsException>(() => Parse(args));
        Assert.Contains(named, ex.Message);
    }

    [Theory]
    [InlineData("num_threads", "many")]
    [InlineData("listen_port", "99999")]
    [InlineData("target_port", "http")]
    [InlineData("blocklist_syntax", "regex")]
    public void Bad_environment_values_name_the_variable(string variable, string value)
    {
        var ex = Assert.Throws<StatsdFilterOptionsException>(() => Parse([], (variable, value)));
        Assert.Contains(variable, ex.Message);
        Assert.Contains(value, ex.Message);
    }

    [Fact]
    public void Bad_environment_blocklist_in_rule_syntax_names_the_variable()
    {
        var ex = Assert.Throws<StatsdFilterOptionsException>(() => Parse([], ("blocklist", "a*b"), ("blocklist_syntax", "rules")));
        Assert.Contains("blocklist", ex.Message);
        Assert.Contains("a*b", ex.Message);
    }

    [Fact]
    public void Seed_environment_blocklist_accepts_any_text()
    {
        Assert.True(Parse([], ("blocklist", "a*b")).Rules.ShouldDrop("a*bc"u8));
    }

    [Theory]
    [InlineData("num_threads", "many")]
    public void Bad_environment_values_name_the_variable_and_value(string variable, string value)
    {
        var ex = Assert.Throws<StatsdFilterOptionsException>(() => Parse([], (variable, value)));
        Assert.Contains(variable, ex.Message);
        Assert.Contains(value, ex.Message);
    }

    [Fact]
    public void Bad_environment_value_is_reported_even_if_a_flag_overrides_it()
    {
        // Documented behaviour: the environment is validated first.
        Assert.Throws<StatsdFilterOptionsException>(() => Parse(["--listen-port", "1"], ("listen_port", "x")));
    }
}
