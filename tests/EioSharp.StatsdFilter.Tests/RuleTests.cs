using System.Text.RegularExpressions;
using static EioSharp.StatsdFilter.Tests.TestUtil;

namespace EioSharp.StatsdFilter.Tests;

public class RuleTests
{
    private static bool Drops(string rules, string line)
    {
        Assert.True(StatsdLine.TryParse(B(line), out StatsdLineInfo info), line);
        return FilterRules.Parse(rules).ShouldDrop(in info);
    }

    private static bool Drops(FilterRules rules, string line)
    {
        Assert.True(StatsdLine.TryParse(B(line), out StatsdLineInfo info), line);
        return rules.ShouldDrop(in info);
    }

    [Theory]
    [InlineData("foo", "foo:1|c", true)]
    [InlineData("foo", "foo.bar:1|c", false)]
    [InlineData("foo", "fo:1|c", false)]
    [InlineData("foo", "Foo:1|c", false)]
    [InlineData("foo.bar", "foo.bar:1|c", true)]
    [InlineData("a,b,c", "b:1|c", true)]
    [InlineData(" a , b ,, c ", "c:1|c", true)]
    [InlineData("été", "été:1|c", true)]
    public void Exact(string rules, string line, bool dropped) => Assert.Equal(dropped, Drops(rules, line));

    [Theory]
    [InlineData("foo.*", "foo.bar:1|c", true)]
    [InlineData("foo.*", "foo.:1|c", true)]
    [InlineData("foo.*", "foo:1|c", false)]
    [InlineData("foo.*", "foobar:1|c", false)]
    [InlineData("foo*", "foobar:1|c", true)]
    [InlineData("foo*", "foo:1|c", true)]
    [InlineData("*", "anything:1|c", true)]
    [InlineData("a.b.*,x.*", "x.y:1|c", true)]
    [InlineData("a.b.*,x.*", "a.b.c:1|c", true)]
    [InlineData("a.b.*,x.*", "a.c:1|c", false)]
    [InlineData("abc.*,ab.*", "ab.x:1|c", true)]
    [InlineData("abc.*,ab.*", "ab:1|c", false)]
    public void Prefix(string rules, string line, bool dropped) => Assert.Equal(dropped, Drops(rules, line));

    [Theory]
    [InlineData("regex:foo", "foo:1|c", true)]
    [InlineData("regex:foo", "foobar:1|c", true)]
    [InlineData("regex:foo", "xfoo:1|c", false)]
    [InlineData("regex:foo$", "foobar:1|c", false)]
    [InlineData("regex:.*foo", "xfoo:1|c", true)]
    [InlineData("regex:a|b", "b.x:1|c", true)]
    [InlineData("regex:a|b", "xb:1|c", false)]
    [InlineData("regex:api\\.v[0-9]+\\.", "api.v12.hits:1|c", true)]
    [InlineData("regex:api\\.v[0-9]+\\.", "api.vx.hits:1|c", false)]
    [InlineData("regex:x\\x2Cy", "x,y:1|c", true)]
    [InlineData("regex:.t.", "été:1|c", true)]
    public void Regex_anchored_at_start(string rules, string line, bool dropped) => Assert.Equal(dropped, Drops(rules, line));

    [Fact]
    public void Regex_on_long_name_uses_pooled_buffer()
    {
        string name = new string('a', 5000) + "z";
        Assert.True(Drops("regex:a+z", name + ":1|c"));
        Assert.False(Drops("regex:a+y", name + ":1|c"));
    }

    [Fact]
    public void Regex_catastrophic_pattern_runs_in_linear_time_without_timeout()
    {
        // (a+)+$ takes 2^n steps on a backtracking engine; NonBacktracking answers at once, so nothing times out.
        FilterRules rules = FilterRules.Parse("regex:(a+)+$", TimeSpan.FromMilliseconds(1));
        Assert.False(rules.HasBacktrackingRegex);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 1000; i++)
        {
            Assert.False(rules.ShouldDrop(B(new string('a', 200) + "!")));
        }

        Assert.True(rules.ShouldDrop(B(new string('a', 200))));
        Assert.Equal(0, rules.RegexTimeouts);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"1000 matches took {clock.Elapsed}");
    }

    [Theory]
    [InlineData(@"regex:(?=a)(a+)+$")]   // lookahead
    [InlineData(@"regex:(a)\1*(a+)+$")]  // backreference
    public void Regex_needing_backtracking_times_out_drops_the_line_and_counts_it(string rule)
    {
        FilterRules rules = FilterRules.Parse(rule, TimeSpan.FromMilliseconds(1));
        Assert.True(rules.HasBacktrackingRegex);
        Assert.True(rules.ShouldDrop(B(new string('a', 40) + "!")));
        Assert.Equal(1, rules.RegexTimeouts);

        // As an allow rule, a timed-out match does not allow the line either.
        FilterRules allow = FilterRules.Parse("!" + rule, TimeSpan.FromMilliseconds(1));
        Assert.True(allow.ShouldDrop(B(new string('a', 40) + "!")));
        Assert.Equal(1, allow.RegexTimeouts);
        Assert.False(allow.ShouldDrop(B("aaa")));
    }

    [Theory]
    [InlineData(@"regex:(a)\1*(a+)+$", false)]
    [InlineData(@"!regex:(a)\1*(a+)+$", true)]
    public void A_drop_decided_by_a_regex_timeout_says_so(string rule, bool allowRule)
    {
        FilterRules rules = FilterRules.Parse(rule + (allowRule ? "" : ",plain"), TimeSpan.FromMilliseconds(1));
        Assert.True(StatsdLine.TryParse(B(new string('a', 40) + "x:1|c"), out StatsdLineInfo evil));
        Assert.True(rules.ShouldDrop(evil, out bool timedOut));
        Assert.True(timedOut);
        Assert.Equal(1, rules.RegexTimeouts);

        // A line dropped (or kept) without a timeout does not say so.
        Assert.True(StatsdLine.TryParse(B(allowRule ? "zzz:1|c" : "plain:1|c"), out StatsdLineInfo other));
        Assert.True(rules.ShouldDrop(other, out timedOut));
        Assert.False(timedOut);
        Assert.True(StatsdLine.TryParse(B("aaa:1|c"), out StatsdLineInfo kept));
        Assert.Equal(allowRule, !rules.ShouldDrop(kept, out timedOut));
        Assert.False(timedOut);
        Assert.Equal(1, rules.RegexTimeouts);
    }

    [Theory]
    [InlineData("foo.x:1|c", true)]
    [InlineData("bar.y:3|g", true)]
    [InlineData("foobar:1|c", true)]
    [InlineData("foo:1|c", true)]
    [InlineData("xfoo:1|c", false)]
    [InlineData("keep:1|c", false)]
    [InlineData("fo:1|c", false)]
    public void Seed_blocklist_entries_are_literal_line_prefixes(string line, bool dropped)
    {
        Assert.True(StatsdLine.TryParse(B(line), out StatsdLineInfo info));
        Assert.Equal(dropped, FilterRules.ParseSeed("foo,bar").ShouldDrop(in info));
        Assert.Equal(dropped, FilterRules.Parse("line:foo,line:bar").ShouldDrop(in info));
    }

    [Fact]
    public void Seed_blocklist_has_no_special_characters_and_may_reach_past_the_name()
    {
        FilterRules rules = FilterRules.ParseSeed(" a.*, b:1|, ,(x+)+");
        Assert.Equal(["line:a.*", "line:b:1|", "line:(x+)+"], rules.Rules);
        Assert.True(Drops(rules, "a.*z:1|c"));
        Assert.False(Drops(rules, "a.b:1|c"));
        Assert.True(Drops(rules, "b:1|c"));
        Assert.False(Drops(rules, "b:2|c"));
        Assert.True(Drops(rules, "(x+)+.y:1|c"));
        Assert.False(Drops(rules, "xx:1|c"));
        Assert.Same(FilterRules.Empty, FilterRules.ParseSeed(" , "));
        Assert.Throws<FormatException>(() => FilterRules.Parse("line:"));
    }

    [Theory]
    [InlineData("tag:env", "a:1|c|#env:prod", true)]
    [InlineData("tag:env", "a:1|c|#env", true)]
    [InlineData("tag:env", "a:1|c|#environment:prod", false)]
    [InlineData("tag:env", "a:1|c|#x:env", false)]
    [InlineData("tag:env", "a:1|c", false)]
    [InlineData("tag:env:prod", "a:1|c|#region:eu,env:prod", true)]
    [InlineData("tag:env:prod", "a:1|c|#env:production", false)]
    [InlineData("tag:env:prod", "a:1|c|#env", false)]
    [InlineData("tag:k:v:w", "a:1|c|#k:v:w", true)]
    [InlineData("tag:k:v", "a:1|c|#k:v:w", false)]
    [InlineData("tag:env:prod", "_e{1,1}:t|x|#env:prod", true)]
    [InlineData("tag:env:prod", "_sc|check|0|#env:prod", true)]
    public void Tag(string rules, string line, bool dropped) => Assert.Equal(dropped, Drops(rules, line));

    [Theory]
    [InlineData("mytitle", "_e{7,4}:mytitle|text", true)]
    [InlineData("my.*", "_e{7,4}:my.itle|text", true)]
    [InlineData("db.*", "_sc|db.up|0", true)]
    [InlineData("_sc", "_sc|db.up|0", false)]
    public void Events_and_service_checks_match_by_title_and_name(string rules, string line, bool dropped) =>
        Assert.Equal(dropped, Drops(rules, line));

    [Theory]
    [InlineData("!keep", "keep:1|c", false)]
    [InlineData("!keep", "other:1|c", true)]
    [InlineData("!keep.*", "keep.a:1|c", false)]
    [InlineData("!keep.*,keep.secret", "keep.secret:1|c", true)]
    [InlineData("!keep.*,keep.secret", "keep.public:1|c", false)]
    [InlineData("!keep.*,!also", "also:1|c", false)]
    [InlineData("!tag:team:core", "a:1|c|#team:core", false)]
    [InlineData("!tag:team:core", "a:1|c|#team:edge", true)]
    [InlineData("!regex:ok", "ok.x:1|c", false)]
    [InlineData("! keep", "keep:1|c", false)]
    [InlineData("noisy", "quiet:1|c", false)]
    [InlineData("", "any:1|c", false)]
    public void Negation_makes_an_allowlist(string rules, string line, bool dropped) =>
        Assert.Equal(dropped, Drops(rules, line));

    [Theory]
    [InlineData("foo*bar")]
    [InlineData("*foo")]
    [InlineData("regex:")]
    [InlineData("regex:(unclosed")]
    [InlineData("regex:a)|(b")]
    [InlineData("!")]
    [InlineData("tag:")]
    [InlineData("tag::v")]
    public void Invalid_rules_throw_with_the_rule_named(string rules)
    {
        FormatException ex = Assert.Throws<FormatException>(() => FilterRules.Parse(rules));
        Assert.Contains(rules, ex.Message);
        Assert.False(FilterRules.TryParse(rules, out _, out string? error));
        Assert.NotNull(error);
    }

    [Fact]
    public void Rules_are_listed_and_round_trip()
    {
        FilterRules rules = FilterRules.Parse(" a , !b.* ,, regex:c ,tag:d:e ");
        Assert.Equal(["a", "!b.*", "regex:c", "tag:d:e"], rules.Rules);
        Assert.True(rules.IsAllowlist);
        Assert.Equal("a,!b.*,regex:c,tag:d:e", rules.ToString());
        Assert.Same(FilterRules.Empty, FilterRules.Parse(null));
        Assert.False(FilterRules.Empty.IsAllowlist);
    }

    [Fact]
    public void Many_exact_rules_use_the_hash_set()
    {
        string rules = string.Join(",", Enumerable.Range(0, 1000).Select(i => $"m{i}"));
        FilterRules parsed = FilterRules.Parse(rules);
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(parsed.ShouldDrop(B($"m{i}")));
        }

        Assert.False(parsed.ShouldDrop(B("m1000")));
        Assert.False(parsed.ShouldDrop(B("m")));
    }

    [Fact]
    public void Exact_and_prefix_matching_does_not_allocate()
    {
        FilterRules rules = FilterRules.Parse("a,b.c,x.*,tag:env:prod,!keep.*");
        byte[] line = B("keep.me:1|c|#env:dev,team:x");
        Assert.True(StatsdLine.TryParse(line, out StatsdLineInfo warm));
        Assert.False(rules.ShouldDrop(in warm));
        int dropped = 0;
        // The fewest bytes of 1,000 parses and matches over warm rounds (one round's count can hold the runtime's own).
        long allocated = AllocationMeter.Measure(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                StatsdLine.TryParse(line, out StatsdLineInfo info);
                dropped += rules.ShouldDrop(in info) ? 1 : 0;
            }
        });

        Assert.Equal(0, allocated);
        Assert.Equal(0, dropped);
    }

    [Fact]
    public void Concurrent_regex_matching_is_thread_safe()
    {
        FilterRules rules = FilterRules.Parse("regex:svc\\.[a-z]+\\.errors");
        Parallel.For(0, 20_000, i =>
        {
            bool even = i % 2 == 0;
            byte[] name = B(even ? $"svc.api.errors.{i}" : $"svc.{i}.errors");
            Assert.Equal(even, rules.ShouldDrop(name));
        });
    }

    [Fact]
    public void Regex_default_timeout_is_finite()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(100), FilterRules.DefaultRegexTimeout);
        Assert.NotEqual(Regex.InfiniteMatchTimeout, FilterRules.DefaultRegexTimeout);
    }
}
