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
/// <item><term><c>regex:pattern</c></term><description>
/// A .NET regular expression matched against the name decoded from UTF-8, anchored at the start
/// only (<c>regex:foo</c> matches <c>foobar</c>; add <c>$</c> to anchor the end). Compiled once with
/// <see cref="RegexOptions.Compiled"/> and <see cref="RegexOptions.CultureInvariant"/> and a match timeout;
/// a match that times out counts as no match. The pattern cannot contain <c>,</c> (the rule
/// separator); write <c>\x2C</c> instead.
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
/// <b>Cost</b>: exact and tag rules are hash lookups, prefix rules one lookup per distinct prefix
/// length, all on UTF-8 bytes without allocation. Regex rules decode the name into a stack or
/// pooled buffer (no allocation) and run each regex in order.
/// </para>
/// <para><b>Thread safety</b>: immutable after parsing; <see cref="ShouldDrop(in StatsdLineInfo)"/> may be called from any number of threads.</para>
/// </remarks>
public sealed class FilterRules
{
    /// <summary>The default match timeout of <c>regex:</c> rules.</summary>
    public static readonly TimeSpan DefaultRegexTimeout = TimeSpan.FromMilliseconds(100);

    private readonly RuleGroup _block;
    private readonly RuleGroup? _allow;
    private readonly string[] _rules;

    private FilterRules(RuleGroup block, RuleGroup? allow, string[] rules)
    {
        _block = block;
        _allow = allow;
        _rules = rules;
    }

    /// <summary>A rule set that drops nothing.</summary>
    public static FilterRules Empty { get; } = new(RuleGroup.Build([]), null, []);

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

        rules = texts.Count == 0
            ? Empty
            : new FilterRules(
                RuleGroup.Build(blockRules),
                allowRules.Count > 0 ? RuleGroup.Build(allowRules) : null,
                [.. texts]);
        return true;
    }

    /// <summary>Decides whether a parsed line is dropped.</summary>
    /// <param name="line">A line that <see cref="StatsdLine.TryParse(ReadOnlySpan{byte}, out StatsdLineInfo)"/> accepted.</param>
    /// <returns><see langword="true"/> to drop the line, <see langword="false"/> to forward it.</returns>
    public bool ShouldDrop(in StatsdLineInfo line)
    {
        if (_block.Matches(line.Name, line.RawTags))
        {
            return true;
        }

        return _allow is not null && !_allow.Matches(line.Name, line.RawTags);
    }

    /// <summary>Decides whether a line with this name and no tags is dropped.</summary>
    /// <param name="name">The metric name, UTF-8.</param>
    /// <returns><see langword="true"/> to drop the line.</returns>
    public bool ShouldDrop(ReadOnlySpan<byte> name)
    {
        if (_block.Matches(name, default))
        {
            return true;
        }

        return _allow is not null && !_allow.Matches(name, default);
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
                var regex = new Regex(
                    "^(?:" + pattern + ")",
                    RegexOptions.Compiled | RegexOptions.CultureInvariant,
                    timeout);
                rule = new Rule(RuleKind.Regex, null, regex);
                return true;
            }
            catch (ArgumentException ex)
            {
                error = ex.Message;
                return false;
            }
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
        Regex,
        TagKey,
        TagExact,
    }

    private readonly record struct Rule(RuleKind Kind, byte[]? Bytes, Regex? Regex);

    /// <summary>The rules of one polarity, indexed for matching.</summary>
    private sealed class RuleGroup
    {
        private const int StackDecodeLimit = 512;

        private readonly ByteStringSet _exact;
        private readonly (int Length, ByteStringSet Set)[] _prefixes;
        private readonly ByteStringSet _tagKeys;
        private readonly ByteStringSet _tagExact;
        private readonly Regex[] _regexes;

        private RuleGroup(ByteStringSet exact, (int, ByteStringSet)[] prefixes, ByteStringSet tagKeys, ByteStringSet tagExact, Regex[] regexes)
        {
            _exact = exact;
            _prefixes = prefixes;
            _tagKeys = tagKeys;
            _tagExact = tagExact;
            _regexes = regexes;
        }

        public static RuleGroup Build(IReadOnlyList<Rule> rules)
        {
            var exact = new List<byte[]>();
            var prefixes = new Dictionary<int, List<byte[]>>();
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
                new ByteStringSet(tagKeys),
                new ByteStringSet(tagExact),
                [.. regexes]);
        }

        public bool Matches(ReadOnlySpan<byte> name, ReadOnlySpan<byte> rawTags)
        {
            if (_exact.Contains(name))
            {
                return true;
            }

            foreach ((int length, ByteStringSet set) in _prefixes)
            {
                if (length > name.Length)
                {
                    break;
                }

                if (set.Contains(name[..length]))
                {
                    return true;
                }
            }

            if (!rawTags.IsEmpty && (_tagKeys.Count > 0 || _tagExact.Count > 0))
            {
                foreach (StatsdTag tag in new StatsdTagEnumerator(rawTags))
                {
                    if (_tagExact.Contains(tag.Raw) || _tagKeys.Contains(tag.Key))
                    {
                        return true;
                    }
                }
            }

            return _regexes.Length > 0 && MatchesRegex(name);
        }

        private bool MatchesRegex(ReadOnlySpan<byte> name)
        {
            int maxChars = Encoding.UTF8.GetMaxCharCount(name.Length);
            char[]? rented = null;
            Span<char> chars = maxChars <= StackDecodeLimit
                ? stackalloc char[StackDecodeLimit]
                : (rented = ArrayPool<char>.Shared.Rent(maxChars));
            try
            {
                ReadOnlySpan<char> decoded = chars[..Encoding.UTF8.GetChars(name, chars)];
                foreach (Regex regex in _regexes)
                {
                    try
                    {
                        if (regex.IsMatch(decoded))
                        {
                            return true;
                        }
                    }
                    catch (RegexMatchTimeoutException)
                    {
                        // Documented: a timed-out match counts as no match.
                    }
                }

                return false;
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
