using System.Globalization;
using System.Numerics;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Exact emulation of the x86-64 C <c>long double</c> (80-bit extended: 64-bit significand) for INCRBYFLOAT,
/// which Redis computes as <c>strtold</c>, <c>+</c>, then <c>printf("%.17Lf")</c> with trailing zeros removed.</summary>
/// <remarks>A value is <c>Significand * 2^Exponent</c> with a significand below 2^64; every step rounds to nearest,
/// ties to even, as the x87 unit and glibc do. That is why <c>INCRBYFLOAT k 0.1</c> on 542 gives Redis's
/// <c>542.09999999999999998</c>, which neither double nor decimal arithmetic reproduces.</remarks>
internal readonly record struct LongDouble(BigInteger Significand, int Exponent)
{
    private const int Precision = 64; // bits of the x87 extended significand
    private const int MinExponent = -16445; // the weight of the lowest bit of the smallest subnormal
    private const int MaxBinaryExponent = 16384; // values of 2^16384 and beyond overflow (LDBL_MAX < 2^16384)
    private const int MaxTextLength = 5 * 1024; // Redis's MAX_LONG_DOUBLE_CHARS: string2ld refuses longer input
    private const int FractionDigits = 17; // "%.17Lf"

    /// <summary>Parses like Redis's <c>string2ld</c> (decimal forms only). Returns false for text that is not a
    /// number, NaN, or out of range (overflow, or underflow to zero); <paramref name="infinite"/> is set for
    /// <c>inf</c>/<c>infinity</c>, which strtold accepts.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out LongDouble value, out bool infinite)
    {
        value = default;
        infinite = false;
        if (text.IsEmpty || text.Length >= MaxTextLength) return false;
        int i = 0;
        bool negative = false;
        if (text[0] is (byte)'+' or (byte)'-')
        {
            negative = text[0] == (byte)'-';
            i = 1;
        }
        ReadOnlySpan<byte> rest = text[i..];
        if (Ascii.EqualsIgnoreCase(rest, "inf"u8) || Ascii.EqualsIgnoreCase(rest, "infinity"u8))
        {
            infinite = true;
            return true;
        }
        BigInteger mantissa = BigInteger.Zero;
        int digits = 0, decimalExponent = 0;
        var digitText = new StringBuilder();
        for (; i < text.Length && char.IsAsciiDigit((char)text[i]); i++, digits++) digitText.Append((char)text[i]);
        if (i < text.Length && text[i] == (byte)'.')
        {
            for (i++; i < text.Length && char.IsAsciiDigit((char)text[i]); i++, digits++)
            {
                digitText.Append((char)text[i]);
                decimalExponent--;
            }
        }
        if (digits == 0) return false;
        if (i < text.Length && text[i] is (byte)'e' or (byte)'E')
        {
            int j = i + 1;
            bool expNegative = false;
            if (j < text.Length && text[j] is (byte)'+' or (byte)'-')
            {
                expNegative = text[j] == (byte)'-';
                j++;
            }
            if (j < text.Length && char.IsAsciiDigit((char)text[j]))
            {
                long exp = 0;
                for (; j < text.Length && char.IsAsciiDigit((char)text[j]); j++) exp = Math.Min(exp * 10 + (text[j] - '0'), 1_000_000);
                decimalExponent += (int)(expNegative ? -exp : exp);
                i = j;
            }
        }
        if (i != text.Length) return false;
        mantissa = BigInteger.Parse(digitText.ToString(), CultureInfo.InvariantCulture);
        if (mantissa.IsZero)
        {
            value = new LongDouble(BigInteger.Zero, 0);
            return true;
        }
        int magnitude = digitText.ToString().TrimStart('0').Length + decimalExponent; // value < 10^magnitude
        if (magnitude > 4940) return false; // beyond LDBL_MAX (1.19e4932): ERANGE
        if (magnitude < -4960) return false; // below the smallest subnormal (3.6e-4951): underflow to zero
        BigInteger numerator = mantissa, denominator = BigInteger.One;
        if (decimalExponent >= 0) numerator *= BigInteger.Pow(10, decimalExponent);
        else denominator = BigInteger.Pow(10, -decimalExponent);
        if (negative) numerator = -numerator;
        value = Round(numerator, denominator, 0);
        if (value.Significand.IsZero || value.IsOverflow) return false;
        return true;
    }

    /// <summary>Whether the value is beyond LDBL_MAX (the result of a rounding that overflowed).</summary>
    public bool IsOverflow => !Significand.IsZero && (long)Exponent + (long)BigInteger.Abs(Significand).GetBitLength() > MaxBinaryExponent;

    /// <summary>The rounded sum, as the x87 unit computes it.</summary>
    public static LongDouble operator +(LongDouble a, LongDouble b)
    {
        if (a.Significand.IsZero) return b;
        if (b.Significand.IsZero) return a;
        int exponent = Math.Min(a.Exponent, b.Exponent);
        BigInteger sum = (a.Significand << (a.Exponent - exponent)) + (b.Significand << (b.Exponent - exponent));
        return Round(sum, BigInteger.One, exponent);
    }

    /// <summary>Rounds <c>numerator / denominator * 2^exponent</c> to 64 significant bits (fewer for subnormals), ties to even.</summary>
    private static LongDouble Round(BigInteger numerator, BigInteger denominator, int exponent)
    {
        if (numerator.IsZero) return new LongDouble(BigInteger.Zero, 0);
        int sign = numerator.Sign;
        numerator = BigInteger.Abs(numerator);
        // Choose a shift so that the quotient has exactly Precision bits (or reaches the subnormal floor).
        long estimate = (long)numerator.GetBitLength() - (long)denominator.GetBitLength(); // bits of the quotient, +-1
        long shift = Precision - estimate; // quotient << shift has about Precision bits
        while (true)
        {
            long resultExponent = exponent - shift;
            if (resultExponent < MinExponent)
            {
                shift -= MinExponent - resultExponent;
                resultExponent = MinExponent;
            }
            BigInteger scaledNumerator = shift >= 0 ? numerator << (int)shift : numerator;
            BigInteger scaledDenominator = shift >= 0 ? denominator : denominator << (int)-shift;
            BigInteger quotient = BigInteger.DivRem(scaledNumerator, scaledDenominator, out BigInteger remainder);
            long bits = (long)quotient.GetBitLength();
            if (bits > Precision)
            {
                shift -= bits - Precision;
                continue;
            }
            if (bits < Precision && resultExponent > MinExponent)
            {
                shift += Precision - bits;
                continue;
            }
            int cmp = (remainder * 2).CompareTo(scaledDenominator);
            if (cmp > 0 || (cmp == 0 && !quotient.IsEven)) quotient += 1;
            int e = (int)resultExponent;
            if (quotient.GetBitLength() > Precision)
            {
                quotient >>= 1;
                e++;
            }
            return new LongDouble(sign < 0 ? -quotient : quotient, e);
        }
    }

    /// <summary>Formats like Redis's <c>ld2string</c> in human mode: <c>%.17Lf</c> (rounded half to even, exactly), then
    /// trailing zeros and a trailing point removed, and <c>-0</c> printed as <c>0</c>.</summary>
    public string FormatHuman()
    {
        BigInteger numerator = BigInteger.Abs(Significand) * BigInteger.Pow(10, FractionDigits), denominator = BigInteger.One;
        if (Exponent >= 0) numerator <<= Exponent;
        else denominator <<= -Exponent;
        BigInteger scaled = BigInteger.DivRem(numerator, denominator, out BigInteger remainder);
        int cmp = (remainder * 2).CompareTo(denominator);
        if (cmp > 0 || (cmp == 0 && !scaled.IsEven)) scaled += 1;
        string digits = scaled.ToString(CultureInfo.InvariantCulture).PadLeft(FractionDigits + 1, '0');
        string text = digits[..^FractionDigits] + "." + digits[^FractionDigits..];
        text = text.TrimEnd('0').TrimEnd('.');
        if (Significand.Sign < 0 && text != "0") text = "-" + text;
        return text;
    }
}
