using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>The kind of a file in an <see cref="AofManifest"/> (Redis 7's <c>type</c> field).</summary>
public enum AofFileType
{
    /// <summary><c>b</c>: the snapshot written by the last rewrite (an RDB file or AOF commands), loaded first.</summary>
    Base,

    /// <summary><c>i</c>: commands appended after the base, loaded in sequence order; the last one is the file being written.</summary>
    Incr,

    /// <summary><c>h</c>: a base or incremental file a rewrite made obsolete, removed unless <c>aof-disable-auto-gc</c>.</summary>
    History,
}

/// <summary>One line of an <see cref="AofManifest"/>.</summary>
/// <param name="FileName">The file's name inside the AOF directory (never a path).</param>
/// <param name="Sequence">Its sequence number (positive).</param>
/// <param name="Type">Its kind.</param>
public sealed record AofFileInfo(string FileName, long Sequence, AofFileType Type);

/// <summary>The error Redis reports for a manifest it cannot read (it refuses to start).</summary>
public sealed class AofManifestException(string message, int line, string? lineText) : Exception(message)
{
    /// <summary>The 1-based line the error is on; 0 for the whole file.</summary>
    public int Line { get; } = line;

    /// <summary>The line's text (trimmed), if the error is on a line.</summary>
    public string? LineText { get; } = lineText;
}

/// <summary>Redis 7's multi-part AOF manifest (<c>appendonly.aof.manifest</c> in <c>appenddirname</c>): a base file, history
/// files and incremental files, one per line as <c>file &lt;name&gt; seq &lt;n&gt; type &lt;b|h|i&gt;</c>.</summary>
/// <remarks>Mirrors redis 7.0's aof.c (aofLoadManifestFromFile, getAofManifestAsString, getNewBaseFileNameAndMarkPreAsHistory,
/// getNewIncrAofName, markRewrittenIncrAofAsHistory) so that the directory is interchangeable with redis-server's: the
/// same file names, line syntax (names needing quoting are written as sdscatrepr does), order (base, history, incr) and
/// error texts. Not thread-safe: the AOF's owner keeps it.</remarks>
public sealed class AofManifest
{
    /// <summary>The base file, if any.</summary>
    public AofFileInfo? Base { get; private set; }

    /// <summary>History files, in manifest order.</summary>
    public List<AofFileInfo> History { get; } = [];

    /// <summary>Incremental files in sequence order; the last is the one being appended to.</summary>
    public List<AofFileInfo> Incr { get; } = [];

    /// <summary>The highest base sequence number used.</summary>
    public long CurrentBaseSequence { get; private set; }

    /// <summary>The highest incremental sequence number used.</summary>
    public long CurrentIncrSequence { get; private set; }

    /// <summary>True when changed since it was read or last written.</summary>
    public bool Dirty { get; set; }

    /// <summary>The manifest's file name for <paramref name="appendFileName"/> (<c>appendonly.aof.manifest</c>).</summary>
    public static string ManifestName(string appendFileName) => appendFileName + ".manifest";

    /// <summary>The temporary incremental file used while the first rewrite after <c>CONFIG SET appendonly yes</c> runs
    /// (<c>temp-appendonly.aof.incr</c>).</summary>
    public static string TempIncrName(string appendFileName) => "temp-" + appendFileName + ".incr";

    /// <summary>A deep copy (redis changes a copy and switches to it only once it is on disk).</summary>
    public AofManifest Clone()
    {
        var copy = new AofManifest { Base = Base, CurrentBaseSequence = CurrentBaseSequence, CurrentIncrSequence = CurrentIncrSequence, Dirty = Dirty };
        copy.History.AddRange(History);
        copy.Incr.AddRange(Incr);
        return copy;
    }

    /// <summary>Sets a base file as the upgrade from a single pre-7 AOF does (<c>aofUpgradePrepare</c>): the old file's name, sequence 1.</summary>
    public void SetUpgradedBase(string appendFileName)
    {
        Base = new AofFileInfo(appendFileName, 1, AofFileType.Base);
        CurrentBaseSequence = 1;
        Dirty = true;
    }

    /// <summary>Names a new base file (<c>appendonly.aof.N.base.rdb</c> or <c>.aof</c>), and makes the previous base a history file.</summary>
    public string NewBase(string appendFileName, bool rdbFormat)
    {
        if (Base is { } previous)
        {
            History.Insert(0, previous with { Type = AofFileType.History });
        }

        CurrentBaseSequence++;
        string name = string.Create(CultureInfo.InvariantCulture, $"{appendFileName}.{CurrentBaseSequence}.base{(rdbFormat ? ".rdb" : ".aof")}");
        Base = new AofFileInfo(name, CurrentBaseSequence, AofFileType.Base);
        Dirty = true;
        return name;
    }

    /// <summary>Names a new incremental file (<c>appendonly.aof.N.incr.aof</c>) and adds it at the end.</summary>
    public string NewIncr(string appendFileName)
    {
        CurrentIncrSequence++;
        string name = string.Create(CultureInfo.InvariantCulture, $"{appendFileName}.{CurrentIncrSequence}.incr.aof");
        Incr.Add(new AofFileInfo(name, CurrentIncrSequence, AofFileType.Incr));
        Dirty = true;
        return name;
    }

    /// <summary>The last incremental file's name, adding a new one when there is none (<c>getLastIncrAofName</c>).</summary>
    public string LastIncrOrNew(string appendFileName) => Incr.Count > 0 ? Incr[^1].FileName : NewIncr(appendFileName);

    /// <summary>After a rewrite: every incremental file but the last (the one being written, when <paramref name="keepLast"/>)
    /// becomes a history file (<c>markRewrittenIncrAofAsHistory</c>).</summary>
    public void MarkRewrittenIncrAsHistory(bool keepLast)
    {
        int stop = keepLast ? Incr.Count - 1 : Incr.Count;
        for (int i = stop - 1; i >= 0; i--)
        {
            History.Insert(0, Incr[i] with { Type = AofFileType.History });
            Incr.RemoveAt(i);
        }

        Dirty = true;
    }

    /// <summary>The manifest's text: base, then history, then incremental files, one line each.</summary>
    public string Format()
    {
        var text = new StringBuilder();
        void Line(AofFileInfo info)
        {
            char type = info.Type switch { AofFileType.Base => 'b', AofFileType.Incr => 'i', _ => 'h' };
            text.Append("file ").Append(Repr(info.FileName)).Append(" seq ").Append(info.Sequence.ToString(CultureInfo.InvariantCulture))
                .Append(" type ").Append(type).Append('\n');
        }

        if (Base is not null)
        {
            Line(Base);
        }

        History.ForEach(Line);
        Incr.ForEach(Line);
        return text.ToString();
    }

    /// <summary>Reads a manifest's text as redis 7.0 does (<c>aofLoadManifestFromFile</c>): <c>#</c> lines are skipped, keys
    /// are case-insensitive, unknown key/value pairs are ignored.</summary>
    /// <exception cref="AofManifestException">Redis's error: "Found an empty AOF manifest", "Invalid AOF manifest file
    /// format", "File can't be a path, just a filename", "Found duplicate base file information", "Found a non-monotonic
    /// sequence number", "Unknown AOF file type", "The AOF manifest file contains too long line".</exception>
    public static AofManifest Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var manifest = new AofManifest();
        if (text.Length == 0)
        {
            throw new AofManifestException("Found an empty AOF manifest", 0, null);
        }

        long maxSeq = 0;
        int lineNumber = 0;
        int pos = 0;
        while (pos < text.Length)
        {
            int nl = text.IndexOf('\n', pos);
            string raw = nl < 0 ? text[pos..] : text[pos..nl];
            pos = nl < 0 ? text.Length : nl + 1;
            lineNumber++;
            if (raw.StartsWith('#'))
            {
                continue;
            }

            string line = raw.Trim(' ', '\t', '\r', '\n');
            if (raw.Length > 1024)
            {
                throw new AofManifestException("The AOF manifest file contains too long line", lineNumber, line);
            }

            if (line.Length == 0)
            {
                throw new AofManifestException("Invalid AOF manifest file format", lineNumber, line);
            }

            List<string>? args = SplitArgs(line);
            if (args is null || args.Count < 6 || args.Count % 2 != 0)
            {
                throw new AofManifestException("Invalid AOF manifest file format", lineNumber, line);
            }

            string? name = null;
            long seq = 0;
            char type = '\0';
            for (int i = 0; i < args.Count; i += 2)
            {
                if (args[i].Equals("file", StringComparison.OrdinalIgnoreCase))
                {
                    name = args[i + 1];
                    if (name.Contains('/', StringComparison.Ordinal))
                    {
                        throw new AofManifestException("File can't be a path, just a filename", lineNumber, line);
                    }
                }
                else if (args[i].Equals("seq", StringComparison.OrdinalIgnoreCase))
                {
                    seq = AtoLL(args[i + 1]);
                }
                else if (args[i].Equals("type", StringComparison.OrdinalIgnoreCase))
                {
                    type = args[i + 1].Length > 0 ? args[i + 1][0] : '\0';
                }
            }

            if (string.IsNullOrEmpty(name) || seq == 0 || type == '\0')
            {
                throw new AofManifestException("Invalid AOF manifest file format", lineNumber, line);
            }

            switch (type)
            {
                case 'b':
                    if (manifest.Base is not null)
                    {
                        throw new AofManifestException("Found duplicate base file information", lineNumber, line);
                    }

                    manifest.Base = new AofFileInfo(name, seq, AofFileType.Base);
                    manifest.CurrentBaseSequence = seq;
                    break;
                case 'h':
                    manifest.History.Add(new AofFileInfo(name, seq, AofFileType.History));
                    break;
                case 'i':
                    if (seq <= maxSeq)
                    {
                        throw new AofManifestException("Found a non-monotonic sequence number", lineNumber, line);
                    }

                    manifest.Incr.Add(new AofFileInfo(name, seq, AofFileType.Incr));
                    manifest.CurrentIncrSequence = seq;
                    maxSeq = seq;
                    break;
                default:
                    throw new AofManifestException("Unknown AOF file type", lineNumber, line);
            }
        }

        return manifest;
    }

    // C's atoll: leading blanks, an optional sign, then digits up to the first non-digit; 0 when none.
    private static long AtoLL(string s)
    {
        int i = 0;
        while (i < s.Length && char.IsWhiteSpace(s[i]))
        {
            i++;
        }

        bool negative = false;
        if (i < s.Length && (s[i] == '+' || s[i] == '-'))
        {
            negative = s[i] == '-';
            i++;
        }

        long n = 0;
        for (; i < s.Length && char.IsAsciiDigit(s[i]); i++)
        {
            n = unchecked(n * 10 + (s[i] - '0'));
        }

        return negative ? -n : n;
    }

    /// <summary>sdsneedsrepr + sdscatrepr: a name with a blank, quote, backslash or non-printable byte is written quoted.</summary>
    private static string Repr(string name)
    {
        bool needs = name.Length == 0 || name.Any(ch => ch is '\\' or '"' or '\n' or '\r' or '\t' or '\a' or '\b' or ' ' or '\'' || ch < 32 || ch > 126);
        if (!needs)
        {
            return name;
        }

        var s = new StringBuilder("\"");
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            switch (b)
            {
                case (byte)'\\': s.Append("\\\\"); break;
                case (byte)'"': s.Append("\\\""); break;
                case (byte)'\n': s.Append("\\n"); break;
                case (byte)'\r': s.Append("\\r"); break;
                case (byte)'\t': s.Append("\\t"); break;
                case 7: s.Append("\\a"); break;
                case 8: s.Append("\\b"); break;
                default:
                    if (b is >= 32 and <= 126)
                    {
                        s.Append((char)b);
                    }
                    else
                    {
                        s.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture));
                    }

                    break;
            }
        }

        return s.Append('"').ToString();
    }

    /// <summary>sdssplitargs: blank-separated words, "double quotes" with \xHH, \n, \r, \t, \b, \a escapes, 'single quotes'
    /// with \' only; a closing quote must be followed by a blank or the end. Null on unbalanced quotes.</summary>
    private static List<string>? SplitArgs(string line)
    {
        var args = new List<string>();
        int p = 0;
        while (true)
        {
            while (p < line.Length && char.IsWhiteSpace(line[p]))
            {
                p++;
            }

            if (p >= line.Length)
            {
                return args;
            }

            var bytes = new List<byte>();
            bool inDq = false, inSq = false, done = false;
            while (!done)
            {
                if (inDq)
                {
                    if (p >= line.Length)
                    {
                        return null;
                    }

                    if (line[p] == '\\' && p + 3 < line.Length && line[p + 1] == 'x' && Uri.IsHexDigit(line[p + 2]) && Uri.IsHexDigit(line[p + 3]))
                    {
                        bytes.Add(byte.Parse(line.AsSpan(p + 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        p += 3;
                    }
                    else if (line[p] == '\\' && p + 1 < line.Length)
                    {
                        p++;
                        bytes.Add(line[p] switch { 'n' => (byte)'\n', 'r' => (byte)'\r', 't' => (byte)'\t', 'b' => 8, 'a' => 7, _ => (byte)line[p] });
                    }
                    else if (line[p] == '"')
                    {
                        if (p + 1 < line.Length && !char.IsWhiteSpace(line[p + 1]))
                        {
                            return null;
                        }

                        done = true;
                    }
                    else
                    {
                        bytes.AddRange(Encoding.UTF8.GetBytes(line[p].ToString()));
                    }
                }
                else if (inSq)
                {
                    if (p >= line.Length)
                    {
                        return null;
                    }

                    if (line[p] == '\\' && p + 1 < line.Length && line[p + 1] == '\'')
                    {
                        p++;
                        bytes.Add((byte)'\'');
                    }
                    else if (line[p] == '\'')
                    {
                        if (p + 1 < line.Length && !char.IsWhiteSpace(line[p + 1]))
                        {
                            return null;
                        }

                        done = true;
                    }
                    else
                    {
                        bytes.AddRange(Encoding.UTF8.GetBytes(line[p].ToString()));
                    }
                }
                else if (p >= line.Length || char.IsWhiteSpace(line[p]))
                {
                    done = true;
                }
                else if (line[p] == '"')
                {
                    inDq = true;
                }
                else if (line[p] == '\'')
                {
                    inSq = true;
                }
                else
                {
                    bytes.AddRange(Encoding.UTF8.GetBytes(line[p].ToString()));
                }

                if (p < line.Length)
                {
                    p++;
                }
            }

            args.Add(Encoding.UTF8.GetString([.. bytes]));
        }
    }
}
