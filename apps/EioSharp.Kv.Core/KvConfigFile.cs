using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>A configuration file could not be read or has a bad line (Redis's "FATAL CONFIG FILE ERROR").</summary>
public sealed class KvConfigException : Exception
{
    /// <summary>Creates the error.</summary>
    /// <param name="message">What is wrong (Redis's text where it has one).</param>
    public KvConfigException(string message) : base(message)
    {
    }

    /// <summary>Creates the error.</summary>
    public KvConfigException() : base("bad configuration")
    {
    }

    /// <summary>Creates the error.</summary>
    public KvConfigException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>The CONFIG SET argument the error names (Redis's "possibly related to argument '...'"), when it is not the
    /// first one, by its own name (not as the client typed it): set by <see cref="KvLiveConfig.ApplyingNames"/> for a change that fails when applied (port, bind).</summary>
    public string? Argument { get; init; }
}

/// <summary>One directive line of a configuration file: where it is, its text and its arguments (the directive first).</summary>
/// <param name="File">The file the line is in (an <c>include</c>d file for its lines).</param>
/// <param name="LineNumber">1-based line number in <paramref name="File"/>.</param>
/// <param name="Text">The line, trimmed.</param>
/// <param name="Args">The arguments as <see cref="KvConfigFile.SplitArgs"/> splits them; <c>Args[0]</c> is the directive name.</param>
public sealed record KvConfigLine(string File, int LineNumber, string Text, IReadOnlyList<string> Args);

/// <summary>Redis's configuration file syntax: one <c>directive arg...</c> per line, <c>#</c> comments, arguments split and
/// unquoted as <c>sdssplitargs</c> does, <c>include path</c> reading another file in place.</summary>
public static class KvConfigFile
{
    private const int MaxIncludeDepth = 16; // include loops are refused beyond this depth

    /// <summary>Splits a line as Redis's <c>sdssplitargs</c>: arguments separated by blanks; <c>"..."</c> with the escapes
    /// <c>\n \r \t \b \a \\ \" \xHH</c>; <c>'...'</c> with only <c>\'</c>; a closing quote must be followed by a blank or the end.</summary>
    /// <param name="line">The line.</param>
    /// <returns>The arguments; null when the quotes are unbalanced (Redis: "Unbalanced quotes in configuration line").</returns>
    public static List<string>? SplitArgs(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var result = new List<string>();
        int p = 0;
        while (true)
        {
            while (p < line.Length && char.IsWhiteSpace(line[p])) p++;
            if (p >= line.Length) return result;
            var current = new StringBuilder();
            bool inDouble = false, inSingle = false, done = false;
            while (!done)
            {
                if (inDouble)
                {
                    if (p >= line.Length) return null; // unterminated quotes
                    if (line[p] == '\\' && p + 3 < line.Length && line[p + 1] == 'x' && IsHex(line[p + 2]) && IsHex(line[p + 3]))
                    {
                        current.Append((char)int.Parse(line.AsSpan(p + 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        p += 3;
                    }
                    else if (line[p] == '\\' && p + 1 < line.Length)
                    {
                        p++;
                        current.Append(line[p] switch
                        {
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'b' => '\b',
                            'a' => '\a',
                            var c => c,
                        });
                    }
                    else if (line[p] == '"')
                    {
                        // The closing quote must be followed by a space or nothing at all.
                        if (p + 1 < line.Length && !char.IsWhiteSpace(line[p + 1])) return null;
                        done = true;
                    }
                    else
                    {
                        current.Append(line[p]);
                    }
                }
                else if (inSingle)
                {
                    if (p >= line.Length) return null;
                    if (line[p] == '\\' && p + 1 < line.Length && line[p + 1] == '\'')
                    {
                        p++;
                        current.Append('\'');
                    }
                    else if (line[p] == '\'')
                    {
                        if (p + 1 < line.Length && !char.IsWhiteSpace(line[p + 1])) return null;
                        done = true;
                    }
                    else
                    {
                        current.Append(line[p]);
                    }
                }
                else if (p >= line.Length)
                {
                    done = true;
                }
                else
                {
                    switch (line[p])
                    {
                        case ' ' or '\n' or '\r' or '\t' or '\0':
                            done = true;
                            break;
                        case '"':
                            inDouble = true;
                            break;
                        case '\'':
                            inSingle = true;
                            break;
                        default:
                            current.Append(line[p]);
                            break;
                    }
                }
                if (p < line.Length) p++;
            }
            result.Add(current.ToString());
        }
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);

    /// <summary>Quotes an argument for a configuration line when it needs it (empty, blanks, quotes, control characters),
    /// as Redis's <c>sdscatrepr</c> does for CONFIG REWRITE.</summary>
    public static string Quote(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        bool plain = value.Length > 0;
        foreach (char c in value)
        {
            if (c <= ' ' || c == '"' || c == '\'' || c == '\\' || c > '~') plain = false;
        }
        return plain ? value : Repr(value);
    }

    /// <summary>Redis's <c>sdscatrepr</c>: the value always in double quotes, with <c>\\</c>, <c>\"</c>, <c>\n</c>,
    /// <c>\r</c>, <c>\t</c>, <c>\a</c>, <c>\b</c> and <c>\xHH</c> escapes.</summary>
    public static string Repr(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var sb = new StringBuilder("\"");
        foreach (char c in value)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '"': sb.Append("\\\""); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\a': sb.Append("\\a"); break;
                case '\b': sb.Append("\\b"); break;
                default:
                    if (c < ' ' || c > '~') sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c & 0xff:x2}");
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>Reads the directive lines of <paramref name="path"/>, expanding <c>include</c> lines in place (paths relative
    /// to the working directory, as Redis; glob patterns in the file name are expanded in sorted order). The files are
    /// read through the caller's file access (EioSharp.Kv: the library's <c>env.Fs</c>): this type opens nothing itself.</summary>
    /// <param name="path">The configuration file: absolute, or relative to the process's current directory.</param>
    /// <param name="readAllText">Reads a whole file as text; throws <see cref="IOException"/> (errno in
    /// <see cref="Exception.HResult"/>) or <see cref="UnauthorizedAccessException"/> when it cannot.</param>
    /// <param name="listDirectory">The names of the entries of a directory (for glob includes); empty when it is missing.</param>
    /// <returns>The directive lines, in order, includes expanded.</returns>
    /// <exception cref="KvConfigException">A file cannot be read (Redis's "Fatal error, can't open config file '...': ..."),
    /// a line has unbalanced quotes, or includes nest too deep.</exception>
    public static async Task<List<KvConfigLine>> ReadAsync(string path, Func<string, Task<string>> readAllText,
        Func<string, Task<IReadOnlyList<string>>> listDirectory)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(readAllText);
        ArgumentNullException.ThrowIfNull(listDirectory);
        var lines = new List<KvConfigLine>();
        await ReadIntoAsync(path, lines, 0, readAllText, listDirectory);
        return lines;
    }

    private static async Task ReadIntoAsync(string path, List<KvConfigLine> lines, int depth, Func<string, Task<string>> readAllText,
        Func<string, Task<IReadOnlyList<string>>> listDirectory)
    {
        if (depth > MaxIncludeDepth) throw new KvConfigException($"Too many nested includes (at '{path}')");
        string[] text;
        try
        {
            text = (await readAllText(path)).Split('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KvConfigException($"Fatal error, can't open config file '{path}': {IKvFiles.ErrorText(e)}", e);
        }
        if (text.Length > 0 && text[^1].Length == 0) text = text[..^1]; // the newline ending the last line
        for (int i = 0; i < text.Length; i++)
        {
            string line = text[i].Trim(' ', '\t', '\r', '\n');
            if (line.Length == 0 || line[0] == '#') continue;
            List<string> args = SplitArgs(line) ?? throw LineError(path, i + 1, line, "Unbalanced quotes in configuration line");
            if (args.Count == 0) continue;
            if (args[0].Equals("include", StringComparison.OrdinalIgnoreCase))
            {
                if (args.Count != 2) throw LineError(path, i + 1, line, "wrong number of arguments");
                foreach (string included in await ExpandIncludeAsync(args[1], listDirectory))
                {
                    await ReadIntoAsync(included, lines, depth + 1, readAllText, listDirectory);
                }
                continue;
            }
            lines.Add(new KvConfigLine(path, i + 1, line, args));
        }
    }

    private static async Task<IEnumerable<string>> ExpandIncludeAsync(string pattern, Func<string, Task<IReadOnlyList<string>>> listDirectory)
    {
        string name = Path.GetFileName(pattern);
        if (name.IndexOfAny(['*', '?', '[']) < 0) return [pattern];
        string? dirPart = Path.GetDirectoryName(pattern);
        string dir = dirPart is { Length: > 0 } d ? d : ".";
        byte[] glob = Encoding.UTF8.GetBytes(name);
        return (await listDirectory(dir))
            .Where(f => GlobPattern.IsMatch(glob, Encoding.UTF8.GetBytes(f), ignoreCase: false))
            .Order(StringComparer.Ordinal)
            .Select(f => dirPart is { Length: > 0 } ? Path.Combine(dirPart, f) : f);
    }

    /// <summary>The error for a bad line, in Redis's format.</summary>
    public static KvConfigException LineError(string file, int lineNumber, string line, string error) =>
        new($"\n*** FATAL CONFIG FILE ERROR (EioSharp.Kv) ***\nReading the configuration file '{file}', at line {lineNumber}\n>>> '{line}'\n{error}");
}
