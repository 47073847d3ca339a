using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.RegularExpressions;

namespace EioSharp.StatsdFilter;

/// <summary>A parsed blocklist: decides which StatsD lines the proxy drops.</summary>
/// <remarks>
/// <para>
/// <b>Syntax</b>: rules are separated by <c>,</c>; surrounding ASCII whitespace is trimmed and empty
/// entries are ignored. Each rule is one of:
/// </para>
/// <list type="table">
/// <item><term><c>name</c></term><description>Exact match on the whole name, byte for byte (UTF-8, case-sensitive).</description></item>
/// <item><term><c>prefix*</c></term><description>
/// Names starting with <c>prefix</c>: <c>foo.*</c> matches <c>foo.bar</c> and <c>foo.</c> but not <c>foo</c> or
/// <c>foobar</c>; <c>foo*</c> also matches <c>foobar</c>; <c>*</c> matches every name. A <c>*</c> anywhere
/// but at the end is an error (use <c>regex:</c>).
/// </description></item>
/// <item><term><c>line:text</c></term><description>
/// Lines whose raw bytes start with <c>text</c>, a literal (no wildcard, no pattern): the seed's meaning of a
/// blocklist entry (<c>Str.regexp_string</c> matched at position 0 of the data). <c>line:foo</c> matches
/// <c>foo.x:1|c</c> and <c>foobar:1|c</c>, not <c>xfoo:1|c</c>. <see cref="ParseSeed"/> reads a whole list this way.
/// </description></item>
/// <item><term><c>regex:pattern</c></term><description>
/// A .NET regular expression matched against the name decoded from UTF-8, anchored at the start
/// only (<c>regex:foo</c> matches <c>foobar</c>; add <c>$</c> to anchor the end). The pattern cannot contain
/// <c>,</c> (the rule separator); write <c>\x2C</c> instead. See <b>Regular expressions</b> below.
/// </description></item>
/// <item><term><c>tag:key</c></term><description>Lines carrying the DogStatsD tag <c>key</c> or <c>key:anything</c>.</description></item>
/// <item><term><c>tag:key:value</c></term><description>Lines carrying exactly the tag <c>key:value</c> (the value may contain <c>:</c>).</description></item>
/// <item><term><c>!rule</c></term><description>Any rule above, as an allow rule.</description></item>
/// </list>
/// <para>
/// <b>Decision</b>: a line is dropped if it matches any block rule (a rule without <c>!</c>). If there
/// is at least one allow rule, the set is an allowlist: a line is also dropped unless it matches some
/// allow rule. Block rules win over allow rules. Name rules match the metric name, the event title or
/// the service-check name (<see cref="StatsdLineInfo.Name"/>); tag rules match the <c>|#</c> tags.
/// </para>
/// <para>
/// <b>Regular expressions (a security choice)</b>: the blocklist is configuration, but the lines it is matched
/// against come from the network, so a pattern with catastrophic backtracking (<c>(a+)+b</c>) would let any sender
/// stall a domain with small datagrams. Every pattern that the linear-time engine accepts is compiled with
/// <see cref="RegexOptions.NonBacktracking"/>: its match time is linear in the name length whatever the pattern.
/// Only a pattern that needs backtracking (backreferences, lookarounds, atomic groups, conditionals) is compiled with
/// the backtracking engine and a match timeout (<see cref="DefaultRegexTimeout"/>); a match that times out
/// <b>drops</b> the line (fail closed: a line we could not classify is not forwarded) and is counted in
/// <see cref="RegexTimeouts"/>. <see cref="HasBacktrackingRegex"/> says whether any rule runs on the backtracking engine.
/// </para>
/// <para>
/// <b>Cost</b>: exact and tag rules are hash lookups, prefix rules one lookup per distinct prefix
/// length, all on UTF-8 bytes without allocation. Regex rules decode the name into a stack or
/// pooled buffer (no allocation) and run each regex in order.
/// </para>
/// <para><b>Thread safety</b>: immutable after parsing; <see cref="ShouldDrop(in StatsdLineInfo)"/> may be called from any number of threads.</para>
/// </remarks>
public sealed class FilterRules
{
    /// <summary>The default match timeout of <c>regex:</c> rules that need the backtracking engine.</summary>
    public static readonly TimeSpan DefaultRegexTimeout = TimeSpan.FromMilliseconds(100);

    private readonly RuleGroup _block;
    private readonly RuleGroup? _allow;
    private readonly string[] _rules;
    private readonly RegexTimeoutCounter _timeouts;

    private FilterRules(RuleGroup block, RuleGroup? allow, string[] rules, RegexTimeoutCounter timeouts)
    {
        _block = block;
        _allow = allow;
        _rules = rules;
        _timeouts = timeouts;
    }

    /// <summary>A rule set that drops nothing.</summary>
    public static FilterRules Empty { get; } = new(RuleGroup.Build([], new RegexTimeoutCounter()), null, [], new RegexTimeoutCounter());

    /// <summary>The number of <c>regex:</c> matches that timed out (each dropped its line), since parsing.</summary>
    /// <remarks><b>Thread safety</b>: read and updated atomically.</remarks>
    public long RegexTimeouts => Interlocked.Read(ref _timeouts.Count);

    /// <summary>Whether some <c>regex:</c> rule needs the backtracking engine (and so runs with a match timeout).</summary>
    public bool HasBacktrackingRegex { get; private init; }

    /// <summary>The rules as written (trimmed, empty entries removed), in order.</summary>
    public IReadOnlyList<string> Rules => _rules;

    /// <summary>Whether the set has at least one <c>!</c> rule, which makes it an allowlist.</summary>
    public bool IsAllowlist => _allow is not null;

    /// <summary>Parses a comma-separated blocklist.</summary>
    /// <param name="blocklist">The rules; <see langword="null"/> or blank gives <see cref="Empty"/>.</param>
    /// <param name="regexTimeout">Match timeout of <c>regex:</c> rules; default <see cref="DefaultRegexTimeout"/>; <see cref="Regex.InfiniteMatchTimeout"/> disables it.</param>
    /// <returns>The parsed rules.</returns>
    /// <exception cref="FormatException">A rule is invalid; the message names it.</exception>
    public static FilterRules Parse(string? blocklist, TimeSpan? regexTimeout = null)
    {
        if (!TryParse(blocklist, out FilterRules? rules, out string? error, regexTimeout))
        {
            throw new FormatException(error);
        }

        return rules;
    }

    /// <summary>Parses a comma-separated blocklist without throwing.</summary>
    /// <param name="blocklist">The rules; <see langword="null"/> or blank gives <see cref="Empty"/>.</param>
    /// <param name="rules">The parsed rules on success.</param>
    /// <param name="error">A message naming the invalid rule on failure.</param>
    /// <param name="regexTimeout">Match timeout of <c>regex:</c> rules; default <see cref="DefaultRegexTimeout"/>.</param>
    /// <returns><see langword="true"/> if every rule is valid.</returns>
    public static bool TryParse(
        string? blocklist,
        [NotNullWhen(true)] out FilterRules? rules,
        [NotNullWhen(false)] out string? error,
        TimeSpan? regexTimeout = null)
    {
        rules = null;
        error = null;
        TimeSpan timeout = regexTimeout ?? DefaultRegexTimeout;
        var blockRules = new List<Rule>();
        var allowRules = new List<Rule>();
        var texts = new List<string>();
        foreach (string entry in (blocklist ?? string.Empty).Split(','))
        {
            string text = entry.Trim(' ', '\t', '\r', '\n');
            if (text.Length == 0)
            {
                continue;
            }

            bool allow = text[0] == '!';
            string body = allow ? text[1..].TrimStart(' ', '\t') : text;
            if (!TryParseRule(body, timeout, out Rule rule, out string? ruleError))
            {
                error = $"invalid rule '{text}': {ruleError}";
                return false;
            }

            (allow ? allowRules : blockRules).Add(rule);
            texts.Add(text);
        }

        rules = Build(blockRules, allowRules, texts);
        return true;
    }

    /// <summary>Parses a blocklist in the seed's syntax: each comma-separated entry is a literal prefix of the line.</summary>
    /// <remarks>
    /// This is the meaning of the seed's <c>blocklist</c> environment variable (the OCaml program compiles each entry
    /// with <c>Str.regexp_string</c> and drops the data if <c>Str.string_match</c> succeeds at position 0): <c>foo,bar</c>
    /// drops <c>foo.x:1|c</c>, <c>foobar:1|c</c> and <c>bar.y:3|g</c>, and keeps <c>xfoo:1|c</c>. No character is special.
    /// Surrounding ASCII whitespace is trimmed and empty entries are ignored (in the seed an empty entry would drop every
    /// line). Each entry is the rule <c>line:entry</c> of <see cref="Parse"/>.
    /// </remarks>
    /// <param name="blocklist">The entries; <see langword="null"/> or blank gives <see cref="Empty"/>.</param>
    /// <returns>The parsed rules; <see cref="Rules"/> lists them as <c>line:</c> rules.</returns>
    public static FilterRules ParseSeed(string? blocklist)
    {
        var blockRules = new List<Rule>();
        var texts = new List<string>();
        foreach (string entry in (blocklist ?? string.Empty).Split(','))
        {
            string text = entry.Trim(' ', '\t', '\r', '\n');
            if (text.Length > 0)
            {
                blockRules.Add(new Rule(RuleKind.LinePrefix, Encoding.UTF8.GetBytes(text), null));
                texts.Add("line:" + text);
            }
        }

        return Build(blockRules, [], texts);
    }

    private static FilterRules Build(List<Rule> blockRules, List<Rule> allowRules, List<string> texts)
    {
        if (texts.Count == 0)
        {
            return Empty;
        }

        var timeouts = new RegexTimeoutCounter();
        return new FilterRules(
            RuleGroup.Build(blockRules, timeouts),
            allowRules.Count > 0 ? RuleGroup.Build(allowRules, timeouts) : null,
            [.. texts],
            timeouts)
        {
            HasBacktrackingRegex = blockRules.Concat(allowRules).Any(r => r.Kind == RuleKind.Regex && (r.Regex!.Options & RegexOptions.NonBacktracking) == 0),
        };
    }

    /// <summary>Decides whether a parsed line is dropped.</summary>
    /// <param name="line">A line that <see cref="StatsdLine.TryParse(ReadOnlySpan{byte}, out StatsdLineInfo)"/> accepted.</param>
    /// <returns><see langword="true"/> to drop the line, <see langword="false"/> to forward it.</returns>
    public bool ShouldDrop(in StatsdLineInfo line) => ShouldDrop(line, out _);

    /// <summary>Decides whether a parsed line is dropped, and says whether it is dropped because a regular expression timed out.</summary>
    /// <param name="line">A line that <see cref="StatsdLine.TryParse(ReadOnlySpan{byte}, out StatsdLineInfo)"/> accepted.</param>
    /// <param name="regexTimedOut">True when the line is dropped because a <c>regex:</c> match timed out (fail closed;
    /// also counted in <see cref="RegexTimeouts"/>).</param>
    /// <returns><see langword="true"/> to drop the line, <see langword="false"/> to forward it.</returns>
    public bool ShouldDrop(in StatsdLineInfo line, out bool regexTimedOut)
    {
        MatchResult block = _block.Matches(line.Line, line.Name, line.RawTags);
        if (block != MatchResult.NoMatch)
        {
            regexTimedOut = block == MatchResult.TimedOut;
            return true;
        }

        if (_allow is null)
        {
            regexTimedOut = false;
            return false;
        }

        MatchResult allow = _allow.Matches(line.Line, line.Name, line.RawTags);
        regexTimedOut = allow == MatchResult.TimedOut;
        return allow != MatchResult.Match;
    }

    /// <summary>Decides whether a line with this name and no tags is dropped.</summary>
    /// <param name="name">The metric name, UTF-8 (<c>line:</c> rules see it as the whole line).</param>
    /// <returns><see langword="true"/> to drop the line.</returns>
    public bool ShouldDrop(ReadOnlySpan<byte> name)
    {
        if (_block.Matches(name, name, default) != MatchResult.NoMatch)
        {
            return true;
        }

        return _allow is not null && _allow.Matches(name, name, default) != MatchResult.Match;
    }

    /// <summary>Returns the rules as a comma-separated list.</summary>
    /// <returns>The canonical blocklist text.</returns>
    public override string ToString() => string.Join(",", _rules);

    private static bool TryParseRule(string body, TimeSpan timeout, out Rule rule, out string? error)
    {
        rule = default;
        error = null;
        if (body.Length == 0)
        {
            error = "empty rule after '!'";
            return false;
        }

        if (body.StartsWith("regex:", StringComparison.Ordinal))
        {
            string pattern = body["regex:".Length..];
            if (pattern.Length == 0)
            {
                error = "empty regular expression";
                return false;
            }

            try
            {
                // Validate the pattern on its own first, so that a pattern such as "a)|(b" cannot
                // escape the anchoring group below.
                _ = new Regex(pattern, RegexOptions.CultureInvariant);
                string anchored = "^(?:" + pattern + ")";
                Regex regex;
                try
                {
                    // Linear time in the input whatever the pattern; no timeout needed.
                    regex = new Regex(anchored, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
                }
                catch (NotSupportedException)
                {
                    // Backreferences, lookarounds, atomic groups, conditionals: only the backtracking engine runs them.
                    regex = new Regex(anchored, RegexOptions.Compiled | RegexOptions.CultureInvariant, timeout);
                }

                rule = new Rule(RuleKind.Regex, null, regex);
                return true;
            }
            catch (ArgumentException ex)
            {
                error = ex.Message;
                return false;
            }
        }

        if (body.StartsWith("line:", StringComparison.Ordinal))
        {
            string literal = body["line:".Length..];
            if (literal.Length == 0)
            {
                error = "empty line prefix";
                return false;
            }

            rule = new Rule(RuleKind.LinePrefix, Encoding.UTF8.GetBytes(literal), null);
            return true;
        }

        if (body.StartsWith("tag:", StringComparison.Ordinal))
        {
            string tag = body["tag:".Length..];
            int colon = tag.IndexOf(':', StringComparison.Ordinal);
            if (tag.Length == 0 || colon == 0)
            {
                error = "empty tag key";
                return false;
            }

            rule = new Rule(colon < 0 ? RuleKind.TagKey : RuleKind.TagExact, Encoding.UTF8.GetBytes(tag), null);
            return true;
        }

        int star = body.IndexOf('*', StringComparison.Ordinal);
        if (star >= 0 && star != body.Length - 1)
        {
            error = "'*' is only allowed at the end (a prefix rule); use regex: for other patterns";
            return false;
        }

        rule = star < 0
            ? new Rule(RuleKind.Exact, Encoding.UTF8.GetBytes(body), null)
            : new Rule(RuleKind.Prefix, Encoding.UTF8.GetBytes(body[..^1]), null);
        return true;
    }

    private enum RuleKind
    {
        Exact,
        Prefix,
        LinePrefix,
        Regex,
        TagKey,
        TagExact,
    }

    private readonly record struct Rule(RuleKind Kind, byte[]? Bytes, Regex? Regex);

    private enum MatchResult
    {
        NoMatch,
        Match,

        /// <summary>No rule matched and a regex match timed out: the line is dropped whatever the polarity.</summary>
        TimedOut,
    }

    /// <summary>Shared by the block and allow groups of one rule set; a class so the groups can hold a reference.</summary>
    private sealed class RegexTimeoutCounter
    {
#pragma warning disable SA1401, CA1051 // a field, so Interlocked can update it
        public long Count;
#pragma warning restore SA1401, CA1051
    }

    /// <summary>The rules of one polarity, indexed for matching.</summary>
    private sealed class RuleGroup
    {
        private const int StackDecodeLimit = 512;

        private readonly ByteStringSet _exact;
        private readonly (int Length, ByteStringSet Set)[] _prefixes;
        private readonly (int Length, ByteStringSet Set)[] _linePrefixes;
        private readonly ByteStringSet _tagKeys;
        private readonly ByteStringSet _tagExact;
        private readonly Regex[] _regexes;
        private readonly RegexTimeoutCounter _timeouts;

        private RuleGroup(
            ByteStringSet exact,
            (int, ByteStringSet)[] prefixes,
            (int, ByteStringSet)[] linePrefixes,
            ByteStringSet tagKeys,
            ByteStringSet tagExact,
            Regex[] regexes,
            RegexTimeoutCounter timeouts)
        {
            _exact = exact;
            _prefixes = prefixes;
            _linePrefixes = linePrefixes;
            _tagKeys = tagKeys;
            _tagExact = tagExact;
            _regexes = regexes;
            _timeouts = timeouts;
        }

        public static RuleGroup Build(IReadOnlyList<Rule> rules, RegexTimeoutCounter timeouts)
        {
            var exact = new List<byte[]>();
            var prefixes = new Dictionary<int, List<byte[]>>();
            var linePrefixes = new Dictionary<int, List<byte[]>>();
            var tagKeys = new List<byte[]>();
            var tagExact = new List<byte[]>();
            var regexes = new List<Regex>();
            foreach (Rule rule in rules)
            {
                switch (rule.Kind)
                {
                    case RuleKind.Exact:
                        exact.Add(rule.Bytes!);
                        break;
                    case RuleKind.Prefix:
                        if (!prefixes.TryGetValue(rule.Bytes!.Length, out List<byte[]>? list))
                        {
                            prefixes[rule.Bytes.Length] = list = [];
                        }

                        list.Add(rule.Bytes);
                        break;
                    case RuleKind.LinePrefix:
                        if (!linePrefixes.TryGetValue(rule.Bytes!.Length, out List<byte[]>? lineList))
                        {
                            linePrefixes[rule.Bytes.Length] = lineList = [];
                        }

                        lineList.Add(rule.Bytes);
                        break;
                    case RuleKind.TagKey:
                        tagKeys.Add(rule.Bytes!);
                        break;
                    case RuleKind.TagExact:
                        tagExact.Add(rule.Bytes!);
                        break;
                    case RuleKind.Regex:
                        regexes.Add(rule.Regex!);
                        break;
                }
            }

            return new RuleGroup(
                new ByteStringSet(exact),
                [.. prefixes.OrderBy(p => p.Key).Select(p => (p.Key, new ByteStringSet(p.Value)))],
                [.. linePrefixes.OrderBy(p => p.Key).Select(p => (p.Key, new ByteStringSet(p.Value)))],
                new ByteStringSet(tagKeys),
                new ByteStringSet(tagExact),
                [.. regexes],
                timeouts);
        }

        public MatchResult Matches(ReadOnlySpan<byte> line, ReadOnlySpan<byte> name, ReadOnlySpan<byte> rawTags)
        {
            if (_exact.Contains(name) || MatchesPrefix(_prefixes, name) || MatchesPrefix(_linePrefixes, line))
            {
                return MatchResult.Match;
            }

            if (!rawTags.IsEmpty && (_tagKeys.Count > 0 || _tagExact.Count > 0))
            {
                foreach (StatsdTag tag in new StatsdTagEnumerator(rawTags))
                {
                    if (_tagExact.Contains(tag.Raw) || _tagKeys.Contains(tag.Key))
                    {
                        return MatchResult.Match;
                    }
                }
            }

            return _regexes.Length > 0 ? MatchesRegex(name) : MatchResult.NoMatch;
        }

        private static bool MatchesPrefix((int Length, ByteStringSet Set)[] prefixes, ReadOnlySpan<byte> text)
        {
            foreach ((int length, ByteStringSet set) in prefixes)
            {
                if (length > text.Length)
                {
                    break;
                }

                if (set.Contains(text[..length]))
                {
                    return true;
                }
            }

            return false;
        }

        private MatchResult MatchesRegex(ReadOnlySpan<byte> name)
        {
            int maxChars = Encoding.UTF8.GetMaxCharCount(name.Length);
            char[]? rented = null;
            Span<char> chars = maxChars <= StackDecodeLimit
                ? stackalloc char[StackDecodeLimit]
                : (rented = ArrayPool<char>.Shared.Rent(maxChars));
            try
            {
                ReadOnlySpan<char> decoded = chars[..Encoding.UTF8.GetChars(name, chars)];
                bool timedOut = false;
                foreach (Regex regex in _regexes)
                {
                    try
                    {
                        if (regex.IsMatch(decoded))
                        {
                            return MatchResult.Match;
                        }
                    }
                    catch (RegexMatchTimeoutException)
                    {
                        // Documented security choice: fail closed (the line is dropped) and count it.
                        Interlocked.Increment(ref _timeouts.Count);
                        timedOut = true;
                    }
                }

                return timedOut ? MatchResult.TimedOut : MatchResult.NoMatch;
            }
            finally
            {
                if (rented is not null)
                {
                    ArrayPool<char>.Shared.Return(rented);
                }
            }
        }
    }
}
