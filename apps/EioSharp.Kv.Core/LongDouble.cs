using System.Globalization;
using System.Numerics;
using System.Text;

namespace EioSharp.Kv;

/// <summary>The x87 80-bit <c>long double</c> that Redis uses for HINCRBYFLOAT and INCRBYFLOAT on x86-64: parsed like
/// <c>strtold</c> (correctly rounded to a 64-bit significand), added with one rounding, printed like
/// <c>printf("%.17Lf")</c> with trailing zeros removed (Redis's <c>ld2string(LD_STR_HUMAN)</c>).</summary>
/// <remarks>
/// Emulated exactly with <see cref="BigInteger"/>: a finite value is <see cref="Significand"/> × 2^<see cref="Exponent"/>.
/// This is what makes <c>HINCRBYFLOAT k f 0.1</c> on 1000 print <c>1000.09999999999999998</c>, byte for byte as
/// redis-server does; <see cref="double"/> or <see cref="decimal"/> arithmetic cannot. Hexadecimal input (<c>0x1p3</c>),
/// which <c>strtold</c> also reads, is not accepted.
/// </remarks>
internal readonly struct LongDouble
{
    private const int SignificandBits = 64;
    private const int MinExponent = -16445; // exponent of the lowest significand bit of a subnormal
    private const int MaxExponent = 16384 - SignificandBits; // 2^16384 overflows
    private const int MaxChars = 5 * 1024; // Redis's MAX_LONG_DOUBLE_CHARS

    private static readonly BigInteger s_two64 = BigInteger.One << SignificandBits;
    private static readonly BigInteger s_ten17 = BigInteger.Pow(10, 17);

    private LongDouble(BigInteger significand, int exponent, int infinity)
    {
        Significand = significand;
        Exponent = exponent;
        Infinity = infinity;
    }

    /// <summary>The signed significand (at most 64 bits) of a finite value.</summary>
    public BigInteger Significand { get; }

    /// <summary>The power of two the significand is multiplied by.</summary>
    public int Exponent { get; }

    /// <summary>+1 or -1 for an infinity, 0 for a finite value.</summary>
    public int Infinity { get; }

    public bool IsInfinity => Infinity != 0;

    public static LongDouble FromInt64(long value) => Round(value, 0);

    /// <summary>Redis's <c>string2ld</c>: the whole text is a number (no spaces, not NaN), no overflow to infinity,
    /// no underflow to zero; "inf" and "infinity" are accepted.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out LongDouble value)
    {
        value = default;
        if (text.Length == 0 || text.Length >= MaxChars) return false;
        int i = 0;
        bool negative = false;
        if (text[0] is (byte)'+' or (byte)'-')
        {
            negative = text[0] == (byte)'-';
            i++;
        }
        ReadOnlySpan<byte> rest = text[i..];
        if (Ascii.EqualsIgnoreCase(rest, "inf"u8) || Ascii.EqualsIgnoreCase(rest, "infinity"u8))
        {
            value = new LongDouble(BigInteger.Zero, 0, negative ? -1 : 1);
            return true;
        }
        int digitCount = 0, fractionDigits = 0;
        bool dot = false;
        var pending = new StringBuilder();
        for (; i < text.Length; i++)
        {
            byte b = text[i];
            if (b is >= (byte)'0' and <= (byte)'9')
            {
                pending.Append((char)b);
                digitCount++;
                if (dot) fractionDigits++;
            }
            else if (b == (byte)'.' && !dot)
            {
                dot = true;
            }
            else
            {
                break;
            }
        }
        if (digitCount == 0) return false;
        BigInteger digits = BigInteger.Parse(pending.ToString(), CultureInfo.InvariantCulture);
        long exponent10 = 0;
        if (i < text.Length && text[i] is (byte)'e' or (byte)'E')
        {
            int j = i + 1;
            bool expNegative = false;
            if (j < text.Length && text[j] is (byte)'+' or (byte)'-')
            {
                expNegative = text[j] == (byte)'-';
                j++;
            }
            int start = j;
            for (; j < text.Length && text[j] is >= (byte)'0' and <= (byte)'9'; j++)
            {
                if (exponent10 < 1_000_000) exponent10 = exponent10 * 10 + (text[j] - '0');
            }
            if (j > start)
            {
                if (expNegative) exponent10 = -exponent10;
                i = j;
            }
            else
            {
                exponent10 = 0; // "1e" reads as 1 and stops at the 'e', which is then trailing garbage
            }
        }
        if (i != text.Length) return false;
        if (negative) digits = -digits;
        if (digits.IsZero)
        {
            value = default;
            return true;
        }
        exponent10 -= fractionDigits;
        // Magnitudes far outside the range overflow or underflow whatever the digits (at most MaxChars of them).
        if (exponent10 > 2 * MaxChars) return false;
        if (exponent10 < -6 * MaxChars) return false;
        LongDouble result = exponent10 >= 0
            ? RoundRational(digits * BigInteger.Pow(10, (int)exponent10), BigInteger.One)
            : RoundRational(digits, BigInteger.Pow(10, (int)-exponent10));
        if (result.IsInfinity || result.Significand.IsZero) return false; // ERANGE
        value = result;
        return true;
    }

    /// <summary>The sum, rounded once to the nearest long double (ties to even); an infinity on overflow.</summary>
    public static LongDouble operator +(LongDouble a, LongDouble b)
    {
        if (a.IsInfinity || b.IsInfinity)
        {
            if (a.IsInfinity && b.IsInfinity && a.Infinity != b.Infinity) return new LongDouble(BigInteger.Zero, 0, 2); // NaN
            return a.IsInfinity ? a : b;
        }
        if (a.Significand.IsZero) return b;
        if (b.Significand.IsZero) return a;
        int e = Math.Min(a.Exponent, b.Exponent);
        BigInteger sum = (a.Significand << (a.Exponent - e)) + (b.Significand << (b.Exponent - e));
        return Round(sum, e);
    }

    /// <summary>NaN (only from adding opposite infinities).</summary>
    public bool IsNaN => Infinity == 2;

    /// <summary><c>%.17Lf</c> with trailing zeros (and a trailing '.') removed, "-0" printed as "0".</summary>
    public string ToHumanString()
    {
        if (IsNaN) return "nan";
        if (IsInfinity) return Infinity > 0 ? "inf" : "-inf";
        BigInteger magnitude = BigInteger.Abs(Significand);
        BigInteger scaled = Exponent >= 0
            ? (magnitude << Exponent) * s_ten17
            : DivideRoundHalfEven(magnitude * s_ten17, BigInteger.One << -Exponent);
        string digits = scaled.ToString(CultureInfo.InvariantCulture).PadLeft(18, '0');
        string text = digits[..^17] + "." + digits[^17..];
        text = text.TrimEnd('0').TrimEnd('.');
        if (Significand.Sign < 0 && text != "0") text = "-" + text;
        return text;
    }

    private static LongDouble RoundRational(BigInteger numerator, BigInteger denominator)
    {
        // Find e with 2^63 <= |n/d| / 2^e < 2^64, then round |n/d| / 2^e.
        BigInteger n = BigInteger.Abs(numerator);
        long e = (long)n.GetBitLength() - (long)denominator.GetBitLength() - SignificandBits;
        if (e < MinExponent) e = MinExponent;
        if (e > MaxExponent + 2) return new LongDouble(BigInteger.Zero, 0, numerator.Sign);
        BigInteger q;
        while (true)
        {
            q = e >= 0 ? DivideRoundHalfEven(n, denominator << (int)e) : DivideRoundHalfEven(n << (int)-e, denominator);
            if (q < s_two64 || e == long.MaxValue) break;
            e++; // the estimate was one short
        }
        return Normalize(numerator.Sign < 0 ? -q : q, (int)e);
    }

    private static LongDouble Round(BigInteger value, int exponent)
    {
        if (value.IsZero) return default;
        BigInteger n = BigInteger.Abs(value);
        long shift = (long)n.GetBitLength() - SignificandBits;
        long e = exponent + Math.Max(0, shift);
        if (e < MinExponent) e = MinExponent;
        BigInteger q = e > exponent ? DivideRoundHalfEven(n, BigInteger.One << (int)(e - exponent)) : n << (int)(exponent - e);
        if (q >= s_two64)
        {
            q = DivideRoundHalfEven(q, 2);
            e++;
        }
        return Normalize(value.Sign < 0 ? -q : q, (int)e);
    }

    private static LongDouble Normalize(BigInteger q, int e)
    {
        if (q.IsZero) return default;
        if (BigInteger.Abs(q) >= s_two64)
        {
            q /= 2; // exact: only reached when q == 2^64 after rounding up
            e++;
        }
        if (e > MaxExponent) return new LongDouble(BigInteger.Zero, 0, q.Sign);
        return new LongDouble(q, e, 0);
    }

    private static BigInteger DivideRoundHalfEven(BigInteger n, BigInteger d)
    {
        BigInteger q = BigInteger.DivRem(n, d, out BigInteger r);
        int c = (r * 2).CompareTo(d);
        if (c > 0 || (c == 0 && !q.IsEven)) q += 1;
        return q;
    }
}
