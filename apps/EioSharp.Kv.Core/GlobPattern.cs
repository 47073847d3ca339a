namespace EioSharp.Kv;

/// <summary>Redis's <c>stringmatchlen</c>: glob matching for KEYS, SCAN MATCH and CONFIG GET.</summary>
/// <remarks><c>*</c> any run, <c>?</c> one byte, <c>[abc]</c>, <c>[^a]</c>, <c>[a-z]</c> classes,
/// <c>\x</c> a literal x. Byte-wise, binary-safe; nesting deeper than 1000 stars never matches
/// (Redis's protection against abusive patterns).</remarks>
public static class GlobPattern
{
    private const int MaxNesting = 1000; // Redis: protection against abusive patterns

    /// <summary>Whether <paramref name="text"/> matches <paramref name="pattern"/>.</summary>
    public static bool IsMatch(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text, bool ignoreCase = false)
    {
        bool skipLonger = false;
        return Match(pattern, text, ignoreCase, ref skipLonger, 0);
    }

    /// <summary>Whether <paramref name="pattern"/> is <c>*</c>, which matches everything.</summary>
    public static bool MatchesAll(ReadOnlySpan<byte> pattern) => pattern.Length == 1 && pattern[0] == (byte)'*';

    private static bool Match(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text, bool nocase, ref bool skipLonger, int nesting)
    {
        if (nesting > MaxNesting) return false;
        int p = 0, s = 0;
        while (p < pattern.Length && s < text.Length)
        {
            switch (pattern[p])
            {
                case (byte)'*':
                    while (p + 1 < pattern.Length && pattern[p + 1] == (byte)'*') p++;
                    if (p + 1 == pattern.Length) return true;
                    while (s < text.Length)
                    {
                        if (Match(pattern[(p + 1)..], text[s..], nocase, ref skipLonger, nesting + 1)) return true;
                        if (skipLonger) return false;
                        s++;
                    }
                    skipLonger = true;
                    return false;
                case (byte)'?':
                    s++;
                    break;
                case (byte)'[':
                {
                    p++;
                    bool not = p < pattern.Length && pattern[p] == (byte)'^';
                    if (not) p++;
                    bool match = false;
                    byte c = text[s];
                    while (true)
                    {
                        if (p < pattern.Length && pattern[p] == (byte)'\\' && pattern.Length - p >= 2)
                        {
                            p++;
                            if (Eq(pattern[p], c, nocase)) match = true;
                        }
                        else if (p < pattern.Length && pattern[p] == (byte)']')
                        {
                            break;
                        }
                        else if (p >= pattern.Length)
                        {
                            p--;
                            break;
                        }
                        else if (pattern.Length - p >= 3 && pattern[p + 1] == (byte)'-')
                        {
                            int start = pattern[p], end = pattern[p + 2], ch = c;
                            if (start > end) (start, end) = (end, start);
                            if (nocase)
                            {
                                start = Lower(start);
                                end = Lower(end);
                                ch = Lower(ch);
                            }
                            p += 2;
                            if (ch >= start && ch <= end) match = true;
                        }
                        else if (Eq(pattern[p], c, nocase))
                        {
                            match = true;
                        }
                        p++;
                    }
                    if (not) match = !match;
                    if (!match) return false;
                    s++;
                    break;
                }
                case (byte)'\\':
                    if (pattern.Length - p >= 2) p++;
                    if (!Eq(pattern[p], text[s], nocase)) return false;
                    s++;
                    break;
                default:
                    if (!Eq(pattern[p], text[s], nocase)) return false;
                    s++;
                    break;
            }
            p++;
            if (s == text.Length)
            {
                while (p < pattern.Length && pattern[p] == (byte)'*') p++;
                break;
            }
        }
        return p == pattern.Length && s == text.Length;
    }

    private static bool Eq(byte a, byte b, bool nocase) => a == b || (nocase && Lower(a) == Lower(b));

    private static int Lower(int c) => c is >= 'A' and <= 'Z' ? c | 0x20 : c;
}
