using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Number parsing and formatting with Redis's rules.</summary>
public static class RespNumbers
{
    /// <summary>Redis's <c>string2ll</c>: optional '-', decimal digits, no '+', no spaces, no leading zeros, in range.</summary>
    public static bool TryParseInt64(ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        if (text.Length == 0 || text.Length > 20) return false;
        int i = 0;
        bool negative = false;
        if (text[0] == (byte)'-')
        {
            negative = true;
            i = 1;
            if (text.Length == 1) return false;
        }
        if (text[i] == (byte)'0')
        {
            // Only "0" itself may start with a zero ("-0" is rejected like Redis does).
            if (text.Length == 1) return true;
            return false;
        }
        ulong v = 0;
        for (; i < text.Length; i++)
        {
            uint d = (uint)(text[i] - '0');
            if (d > 9) return false;
            if (v > (ulong.MaxValue - d) / 10) return false;
            v = v * 10 + d;
        }
        if (negative)
        {
            if (v > (ulong)long.MaxValue + 1) return false;
            value = (long)(0 - v);
        }
        else
        {
            if (v > long.MaxValue) return false;
            value = (long)v;
        }
        return true;
    }

    /// <summary>Parses a float like Redis's <c>string2ld</c>: no surrounding spaces, not NaN.</summary>
    public static bool TryParseDouble(ReadOnlySpan<byte> text, out double value)
    {
        value = 0;
        if (text.Length == 0 || text.Length > 5000) return false;
        if (text.Length <= 15)
        {
            // Plain digits (a blocking command's timeout "0", an integer score): below 10^15 < 2^53 the integer is the
            // double exactly, as double.TryParse would give it, without the general number parser.
            long digits = 0;
            int i = 0;
            for (; i < text.Length && (uint)(text[i] - '0') <= 9; i++) digits = digits * 10 + (text[i] - '0');
            if (i == text.Length)
            {
                value = digits;
                return true;
            }
        }
        if (IsSpace(text[0]) || IsSpace(text[^1])) return false;
        if (!double.TryParse(text, NumberStyles.Float & ~(NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite), CultureInfo.InvariantCulture, out value))
        {
            if (Ascii.EqualsIgnoreCase(text, "inf"u8) || Ascii.EqualsIgnoreCase(text, "+inf"u8)) { value = double.PositiveInfinity; return true; }
            if (Ascii.EqualsIgnoreCase(text, "-inf"u8)) { value = double.NegativeInfinity; return true; }
            return false;
        }
        return !double.IsNaN(value);
    }

    /// <summary>Formats like Redis's human-friendly long double output: no exponent, no trailing zeros.</summary>
    public static string FormatHuman(double value)
    {
        if (double.IsPositiveInfinity(value)) return "inf";
        if (double.IsNegativeInfinity(value)) return "-inf";
        if (double.IsNaN(value)) return "nan";
        string s = value.ToString("R", CultureInfo.InvariantCulture);
        if (s.Contains('E', StringComparison.Ordinal))
        {
            // Expand the exponent: Redis prints plain decimal digits.
            s = value.ToString("F20", CultureInfo.InvariantCulture);
            if (s.Contains('.', StringComparison.Ordinal)) s = s.TrimEnd('0').TrimEnd('.');
            if (s == "-0") s = "0";
        }
        return s;
    }

    /// <summary>Formats a double for a RESP3 double reply or a RESP2 bulk (Redis's <c>%.17g</c> style, shortest round trip).</summary>
    public static string FormatDouble(double value)
    {
        if (double.IsPositiveInfinity(value)) return "inf";
        if (double.IsNegativeInfinity(value)) return "-inf";
        if (double.IsNaN(value)) return "nan";
        return value.ToString("R", CultureInfo.InvariantCulture).Replace("E+", "e+", StringComparison.Ordinal).Replace("E-", "e-", StringComparison.Ordinal);
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f';
}
