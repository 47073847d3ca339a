using System.Globalization;
using System.Text;
using KeraLua;

namespace EioSharp.Kv.Scripting;

internal static partial class LuaLibraries
{
    // lua-cjson 2.1.0 as Redis configures it: numbers with %.14g, '/' escaped, sparse arrays refused (ratio 2, safe 10),
    // nesting limited to 1000, cjson.null a NULL light userdata.
    private const int JsonMaxDepth = 1000;
    private const int SparseRatio = 2;
    private const int SparseSafe = 10;

    private static int CJsonEncode(IntPtr s)
    {
        Lua l = Lua.FromIntPtr(s);
        if (l.GetTop() != 1) return LuaSandbox.ArgError(l, 1, "expected 1 argument");
        var sb = new List<byte>(64);
        string? error = JsonEncode(l, sb, 0);
        if (error is not null) return LuaError(l, error);
        l.PushBuffer([.. sb]);
        return 1;
    }

    private static void Append(List<byte> sb, string ascii)
    {
        foreach (char c in ascii) sb.Add((byte)c);
    }

    private static string? JsonEncode(Lua l, List<byte> sb, int depth)
    {
        switch (l.Type(-1))
        {
            case LuaType.String:
                JsonEncodeString(sb, l.ToBuffer(-1, false) ?? []);
                return null;
            case LuaType.Number:
            {
                double d = l.IsInteger(-1) ? l.ToInteger(-1) : l.ToNumber(-1);
                if (double.IsNaN(d) || double.IsInfinity(d)) return "Cannot serialise number: must not be NaN or Inf";
                Append(sb, LuaSandbox.FormatG14(d));
                return null;
            }
            case LuaType.Boolean:
                Append(sb, l.ToBoolean(-1) ? "true" : "false");
                return null;
            case LuaType.Nil:
                Append(sb, "null");
                return null;
            case LuaType.LightUserData when l.ToUserData(-1) == IntPtr.Zero:
                Append(sb, "null");
                return null;
            case LuaType.Table:
                break;
            default:
                return $"Cannot serialise {l.TypeName(l.Type(-1))}: type not supported";
        }
        depth++;
        if (depth > JsonMaxDepth) return $"Cannot serialise, excessive nesting ({depth})";
        if (!l.CheckStack(4)) return "Cannot serialise, excessive nesting";

        // Array length: every key a positive integer, not too sparse; -1 when it is an object.
        long max = 0, items = 0;
        bool isArray = true;
        l.PushNil();
        while (l.Next(-2))
        {
            l.Pop(1);
            if (l.Type(-1) == LuaType.Number)
            {
                double k = l.ToNumber(-1);
                if (k == Math.Floor(k) && k >= 1)
                {
                    if (k > max) max = (long)k;
                    items++;
                    continue;
                }
            }
            isArray = false;
            l.Pop(1);
            break;
        }
        if (isArray && max > items * SparseRatio && max > SparseSafe) return "Cannot serialise table: excessively sparse array";
        if (isArray && max > 0)
        {
            sb.Add((byte)'[');
            for (long i = 1; i <= max; i++)
            {
                if (i > 1) sb.Add((byte)',');
                l.RawGetInteger(-1, i);
                string? e = JsonEncode(l, sb, depth);
                l.Pop(1);
                if (e is not null) return e;
            }
            sb.Add((byte)']');
            return null;
        }
        sb.Add((byte)'{');
        bool first = true;
        l.PushNil();
        while (l.Next(-2))
        {
            if (!first) sb.Add((byte)',');
            first = false;
            LuaType kt = l.Type(-2);
            if (kt == LuaType.String)
            {
                JsonEncodeString(sb, l.ToBuffer(-2, false) ?? []);
            }
            else if (kt == LuaType.Number)
            {
                double k = l.IsInteger(-2) ? l.ToInteger(-2) : l.ToNumber(-2);
                sb.Add((byte)'"');
                Append(sb, LuaSandbox.FormatG14(k));
                sb.Add((byte)'"');
            }
            else
            {
                l.Pop(2);
                return "Cannot serialise table: table key must be a number or string";
            }
            sb.Add((byte)':');
            string? e = JsonEncode(l, sb, depth);
            if (e is not null)
            {
                l.Pop(2);
                return e;
            }
            l.Pop(1);
        }
        sb.Add((byte)'}');
        return null;
    }

    private static void JsonEncodeString(List<byte> sb, byte[] s)
    {
        sb.Add((byte)'"');
        foreach (byte b in s)
        {
            switch (b)
            {
                case (byte)'"': Append(sb, "\\\""); break;
                case (byte)'\\': Append(sb, "\\\\"); break;
                case (byte)'/': Append(sb, "\\/"); break;
                case (byte)'\b': Append(sb, "\\b"); break;
                case (byte)'\f': Append(sb, "\\f"); break;
                case (byte)'\n': Append(sb, "\\n"); break;
                case (byte)'\r': Append(sb, "\\r"); break;
                case (byte)'\t': Append(sb, "\\t"); break;
                default:
                    if (b < 0x20 || b == 0x7f) Append(sb, "\\u" + b.ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Add(b);
                    break;
            }
        }
        sb.Add((byte)'"');
    }

    private static int CJsonDecode(IntPtr s)
    {
        Lua l = Lua.FromIntPtr(s);
        if (l.GetTop() != 1) return LuaSandbox.ArgError(l, 1, "expected 1 argument");
        if (!LuaSandbox.CheckBytes(l, 1, out byte[] json, out int argError)) return argError;
        var p = new JsonParser(l, json);
        string? error = p.ParseDocument();
        if (error is not null) return LuaError(l, error);
        return 1;
    }

    private ref struct JsonParser(Lua l, byte[] json)
    {
        private int _pos;

        public string? ParseDocument()
        {
            string? e = ParseValue(0);
            if (e is not null) return e;
            SkipWhitespace();
            if (_pos < json.Length) return $"Expected the end but found {TokenName()} at character {_pos + 1}";
            return null;
        }

        private void SkipWhitespace()
        {
            while (_pos < json.Length && json[_pos] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r') _pos++;
        }

        private readonly string TokenName()
        {
            if (_pos >= json.Length) return "T_END";
            return json[_pos] switch
            {
                (byte)'{' => "T_OBJ_BEGIN",
                (byte)'}' => "T_OBJ_END",
                (byte)'[' => "T_ARR_BEGIN",
                (byte)']' => "T_ARR_END",
                (byte)',' => "T_COMMA",
                (byte)':' => "T_COLON",
                (byte)'"' => "T_STRING",
                (byte)'-' or (>= (byte)'0' and <= (byte)'9') => "T_NUMBER",
                (byte)'t' when At("true") => "T_BOOLEAN",
                (byte)'f' when At("false") => "T_BOOLEAN",
                (byte)'n' when At("null") => "T_NULL",
                _ => "invalid token",
            };
        }

        private string? ParseValue(int depth)
        {
            SkipWhitespace();
            if (!l.CheckStack(4)) return "Found too many nested data structures";
            if (_pos >= json.Length) return $"Expected value but found T_END at character {_pos + 1}";
            byte c = json[_pos];
            switch (c)
            {
                case (byte)'{':
                case (byte)'[':
                {
                    if (depth + 1 > JsonMaxDepth) return $"Found too many nested data structures ({depth + 1}) at character {_pos + 1}";
                    bool obj = c == '{';
                    _pos++;
                    l.NewTable();
                    SkipWhitespace();
                    if (_pos < json.Length && json[_pos] == (obj ? '}' : ']'))
                    {
                        _pos++;
                        return null;
                    }
                    for (int i = 1; ; i++)
                    {
                        if (obj)
                        {
                            SkipWhitespace();
                            if (_pos >= json.Length || json[_pos] != '"') return $"Expected object key string but found {TokenName()} at character {_pos + 1}";
                            string? e = ParseString();
                            if (e is not null) return e;
                            SkipWhitespace();
                            if (_pos >= json.Length || json[_pos] != ':') return $"Expected colon but found {TokenName()} at character {_pos + 1}";
                            _pos++;
                            e = ParseValue(depth + 1);
                            if (e is not null) return e;
                            l.RawSet(-3);
                        }
                        else
                        {
                            string? e = ParseValue(depth + 1);
                            if (e is not null) return e;
                            l.RawSetInteger(-2, i);
                        }
                        SkipWhitespace();
                        if (_pos < json.Length && json[_pos] == ',')
                        {
                            _pos++;
                            continue;
                        }
                        if (_pos < json.Length && json[_pos] == (obj ? '}' : ']'))
                        {
                            _pos++;
                            return null;
                        }
                        return $"Expected comma or {(obj ? "object" : "array")} end but found {TokenName()} at character {_pos + 1}";
                    }
                }
                case (byte)'"':
                    return ParseString();
                case (byte)'t' when Matches("true"):
                    l.PushBoolean(true);
                    return null;
                case (byte)'f' when Matches("false"):
                    l.PushBoolean(false);
                    return null;
                case (byte)'n' when Matches("null"):
                    l.PushLightUserData(IntPtr.Zero);
                    return null;
                case (byte)'-':
                case >= (byte)'0' and <= (byte)'9':
                    return ParseNumber();
                default:
                    return $"Expected value but found {TokenName()} at character {_pos + 1}";
            }
        }

        private readonly bool At(string word)
        {
            if (_pos + word.Length > json.Length) return false;
            for (int i = 0; i < word.Length; i++) if (json[_pos + i] != word[i]) return false;
            return true;
        }

        private bool Matches(string word)
        {
            if (_pos + word.Length > json.Length) return false;
            for (int i = 0; i < word.Length; i++) if (json[_pos + i] != word[i]) return false;
            _pos += word.Length;
            return true;
        }

        private string? ParseNumber()
        {
            int start = _pos;
            while (_pos < json.Length && (char.IsAsciiDigit((char)json[_pos]) || json[_pos] is (byte)'-' or (byte)'+' or (byte)'.' or (byte)'e' or (byte)'E')) _pos++;
            string text = Encoding.ASCII.GetString(json, start, _pos - start);
            bool integral = !text.Contains('.', StringComparison.Ordinal) && !text.Contains('e', StringComparison.OrdinalIgnoreCase);
            if (integral && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
            {
                l.PushInteger(v);
                return null;
            }
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
            {
                l.PushNumber(d);
                return null;
            }
            return $"Expected value but found invalid number at character {start + 1}";
        }

        private string? ParseString()
        {
            int start = _pos;
            _pos++; // the quote
            var sb = new List<byte>();
            while (true)
            {
                if (_pos >= json.Length) return $"Expected value but found unexpected end of string at character {start + 1}";
                byte b = json[_pos++];
                if (b == '"') break;
                if (b != '\\')
                {
                    sb.Add(b);
                    continue;
                }
                if (_pos >= json.Length) return $"Expected value but found unexpected end of string at character {start + 1}";
                int escape = _pos - 1; // cjson reports escape errors at the backslash
                byte e = json[_pos++];
                switch (e)
                {
                    case (byte)'"': sb.Add((byte)'"'); break;
                    case (byte)'\\': sb.Add((byte)'\\'); break;
                    case (byte)'/': sb.Add((byte)'/'); break;
                    case (byte)'b': sb.Add((byte)'\b'); break;
                    case (byte)'f': sb.Add((byte)'\f'); break;
                    case (byte)'n': sb.Add((byte)'\n'); break;
                    case (byte)'r': sb.Add((byte)'\r'); break;
                    case (byte)'t': sb.Add((byte)'\t'); break;
                    case (byte)'u':
                    {
                        if (!TryHex4(out int cp)) return $"Expected value but found invalid unicode escape code at character {escape + 1}";
                        if (cp is >= 0xD800 and <= 0xDBFF)
                        {
                            if (_pos + 1 < json.Length && json[_pos] == '\\' && json[_pos + 1] == 'u')
                            {
                                _pos += 2;
                                if (!TryHex4(out int lo) || lo is < 0xDC00 or > 0xDFFF) return $"Expected value but found invalid unicode escape code at character {escape + 1}";
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            else
                            {
                                return $"Expected value but found invalid unicode escape code at character {escape + 1}";
                            }
                        }
                        Span<byte> utf8 = stackalloc byte[4];
                        int n = new Rune(cp is >= 0xDC00 and <= 0xDFFF ? 0xFFFD : cp).EncodeToUtf8(utf8);
                        for (int i = 0; i < n; i++) sb.Add(utf8[i]);
                        break;
                    }
                    default:
                        return $"Expected value but found invalid escape code at character {escape + 1}";
                }
            }
            l.PushBuffer([.. sb]);
            return null;
        }

        private bool TryHex4(out int value)
        {
            value = 0;
            if (_pos + 4 > json.Length) return false;
            for (int i = 0; i < 4; i++)
            {
                int h = HexValue(json[_pos + i]);
                if (h < 0) return false;
                value = value * 16 + h;
            }
            _pos += 4;
            return true;
        }

        private static int HexValue(byte b) => b switch
        {
            >= (byte)'0' and <= (byte)'9' => b - '0',
            >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
            >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
            _ => -1,
        };
    }
}
