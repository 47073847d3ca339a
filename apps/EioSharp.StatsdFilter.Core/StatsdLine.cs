using System.Globalization;

namespace EioSharp.StatsdFilter;

/// <summary>Parses and validates the shape of one StatsD or DogStatsD line.</summary>
/// <remarks>
/// <para>Accepted shapes (all byte-oriented; nothing is decoded or allocated):</para>
/// <list type="bullet">
/// <item><description>
/// <b>Metric</b>: <c>name:value[:value...]|type[|field...]</c>. The name is the text before the first
/// <c>:</c>; it must be non-empty and contain no <c>|</c> and no control byte (below 0x20, or 0x7F).
/// The type is one of <c>c g ms h s d</c>. Values of numeric types are decimal numbers with an
/// optional sign (<c>+</c>/<c>-</c>), fraction and exponent (<c>-1</c>, <c>+4</c>, <c>0.5</c>, <c>1e3</c>);
/// several values may be given (<c>name:1:2:3|ms</c>). A set value (<c>s</c>) is any non-empty text.
/// </description></item>
/// <item><description>
/// <b>Fields</b> after the type, each introduced by <c>|</c> and non-empty: <c>@rate</c> with
/// 0 &lt; rate &lt;= 1; <c>#tag1:v,tag2</c> DogStatsD tags (at least one non-empty tag);
/// <c>c:container</c> (non-empty); <c>T&lt;unix seconds&gt;</c> (decimal digits); any other field is
/// an extension and is accepted. <c>@</c> and <c>#</c> may each appear once.
/// </description></item>
/// <item><description>
/// <b>Event</b>: <c>_e{title_len,text_len}:title|text[|field...]</c>, lengths in bytes, title non-empty.
/// Its <see cref="StatsdLineInfo.Name"/> is the title; a <c>|#</c> field gives its tags.
/// </description></item>
/// <item><description>
/// <b>Service check</b>: <c>_sc|name|status[|field...]</c>, status 0 to 3. Its name is the check name.
/// A <c>|m:</c> message field is last and may contain <c>|</c>.
/// </description></item>
/// </list>
/// <para><b>Errors</b>: never throws; a malformed line yields <see langword="false"/> and a <see cref="StatsdParseError"/>.</para>
/// <para><b>Thread safety</b>: pure functions.</para>
/// </remarks>
public static class StatsdLine
{
    /// <summary>Parses one line (without its newline).</summary>
    /// <param name="line">The line bytes.</param>
    /// <param name="info">The parsed view when the result is <see langword="true"/>; otherwise default.</param>
    /// <returns><see langword="true"/> if the line is well formed.</returns>
    public static bool TryParse(ReadOnlySpan<byte> line, out StatsdLineInfo info) =>
        TryParse(line, out info, out _);

    /// <summary>Parses one line (without its newline) and reports why a malformed line was rejected.</summary>
    /// <param name="line">The line bytes.</param>
    /// <param name="info">The parsed view when the result is <see langword="true"/>; otherwise default.</param>
    /// <param name="error"><see cref="StatsdParseError.None"/> on success, otherwise the first problem found.</param>
    /// <returns><see langword="true"/> if the line is well formed.</returns>
    public static bool TryParse(ReadOnlySpan<byte> line, out StatsdLineInfo info, out StatsdParseError error)
    {
        info = default;
        if (line.IsEmpty)
        {
            error = StatsdParseError.Empty;
            return false;
        }

        if (line.StartsWith("_e{"u8))
        {
            error = ParseEvent(line, out info);
        }
        else if (line.StartsWith("_sc|"u8))
        {
            error = ParseServiceCheck(line, out info);
        }
        else
        {
            error = ParseMetric(line, out info);
        }

        if (error != StatsdParseError.None)
        {
            info = default;
            return false;
        }

        return true;
    }

    /// <summary>Returns whether the text is a decimal number: optional sign, digits with optional fraction, optional exponent.</summary>
    /// <param name="text">ASCII text.</param>
    /// <returns><see langword="true"/> for text like <c>-1</c>, <c>+0.5</c>, <c>.5</c>, <c>1e-3</c>.</returns>
    public static bool IsNumber(ReadOnlySpan<byte> text)
    {
        int i = 0;
        if (i < text.Length && (text[i] == (byte)'+' || text[i] == (byte)'-'))
        {
            i++;
        }

        int digits = 0;
        while (i < text.Length && IsDigit(text[i]))
        {
            i++;
            digits++;
        }

        if (i < text.Length && text[i] == (byte)'.')
        {
            i++;
            while (i < text.Length && IsDigit(text[i]))
            {
                i++;
                digits++;
            }
        }

        if (digits == 0)
        {
            return false;
        }

        if (i < text.Length && (text[i] == (byte)'e' || text[i] == (byte)'E'))
        {
            i++;
            if (i < text.Length && (text[i] == (byte)'+' || text[i] == (byte)'-'))
            {
                i++;
            }

            int exponentDigits = 0;
            while (i < text.Length && IsDigit(text[i]))
            {
                i++;
                exponentDigits++;
            }

            if (exponentDigits == 0)
            {
                return false;
            }
        }

        return i == text.Length;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static bool IsValidName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
        {
            return false;
        }

        foreach (byte b in name)
        {
            if (b < 0x20 || b == 0x7F || b == (byte)'|')
            {
                return false;
            }
        }

        return true;
    }

    private static StatsdParseError ParseMetric(ReadOnlySpan<byte> line, out StatsdLineInfo info)
    {
        info = default;
        int colon = line.IndexOf((byte)':');
        if (colon < 0)
        {
            return StatsdParseError.MissingValue;
        }

        ReadOnlySpan<byte> name = line[..colon];
        if (!IsValidName(name))
        {
            return StatsdParseError.InvalidName;
        }

        ReadOnlySpan<byte> rest = line[(colon + 1)..];
        int pipe = rest.IndexOf((byte)'|');
        if (pipe < 0)
        {
            return StatsdParseError.MissingType;
        }

        ReadOnlySpan<byte> value = rest[..pipe];
        rest = rest[(pipe + 1)..];
        pipe = rest.IndexOf((byte)'|');
        ReadOnlySpan<byte> typeText = pipe < 0 ? rest : rest[..pipe];
        ReadOnlySpan<byte> fields = pipe < 0 ? default : rest[(pipe + 1)..];
        bool hasFields = pipe >= 0;

        StatsdMetricType type = typeText switch
        {
            [(byte)'c'] => StatsdMetricType.Counter,
            [(byte)'g'] => StatsdMetricType.Gauge,
            [(byte)'m', (byte)'s'] => StatsdMetricType.Timer,
            [(byte)'h'] => StatsdMetricType.Histogram,
            [(byte)'s'] => StatsdMetricType.Set,
            [(byte)'d'] => StatsdMetricType.Distribution,
            [] => StatsdMetricType.None,
            _ => (StatsdMetricType)(-1),
        };
        if (type == StatsdMetricType.None)
        {
            return StatsdParseError.MissingType;
        }

        if ((int)type < 0)
        {
            return StatsdParseError.UnknownType;
        }

        if (value.IsEmpty)
        {
            return StatsdParseError.InvalidValue;
        }

        if (type != StatsdMetricType.Set)
        {
            ReadOnlySpan<byte> values = value;
            while (true)
            {
                int next = values.IndexOf((byte)':');
                ReadOnlySpan<byte> one = next < 0 ? values : values[..next];
                if (!IsNumber(one))
                {
                    return StatsdParseError.InvalidValue;
                }

                if (next < 0)
                {
                    break;
                }

                values = values[(next + 1)..];
            }
        }

        double sampleRate = 1.0;
        bool hasRate = false;
        bool hasTags = false;
        ReadOnlySpan<byte> tags = default;
        while (hasFields)
        {
            pipe = fields.IndexOf((byte)'|');
            ReadOnlySpan<byte> field = pipe < 0 ? fields : fields[..pipe];
            hasFields = pipe >= 0;
            fields = hasFields ? fields[(pipe + 1)..] : default;
            if (field.IsEmpty)
            {
                return StatsdParseError.EmptyField;
            }

            switch (field[0])
            {
                case (byte)'@':
                    if (hasRate)
                    {
                        return StatsdParseError.DuplicateField;
                    }

                    ReadOnlySpan<byte> rateText = field[1..];
                    if (!IsNumber(rateText)
                        || !double.TryParse(rateText, NumberStyles.Float, CultureInfo.InvariantCulture, out sampleRate)
                        || !(sampleRate > 0.0 && sampleRate <= 1.0))
                    {
                        return StatsdParseError.InvalidSampleRate;
                    }

                    hasRate = true;
                    break;

                case (byte)'#':
                    StatsdParseError tagError = ParseTagField(field, ref hasTags, ref tags);
                    if (tagError != StatsdParseError.None)
                    {
                        return tagError;
                    }

                    break;

                case (byte)'c' when field.Length >= 2 && field[1] == (byte)':':
                    if (field.Length == 2)
                    {
                        return StatsdParseError.InvalidContainer;
                    }

                    break;

                case (byte)'T':
                    ReadOnlySpan<byte> timestamp = field[1..];
                    if (timestamp.IsEmpty || timestamp.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
                    {
                        return StatsdParseError.InvalidTimestamp;
                    }

                    break;

                default:
                    // Extension field: accepted and forwarded as is.
                    break;
            }
        }

        info = new StatsdLineInfo(line, StatsdLineKind.Metric, name, type, value, sampleRate, hasTags, tags);
        return StatsdParseError.None;
    }

    private static StatsdParseError ParseTagField(ReadOnlySpan<byte> field, ref bool hasTags, ref ReadOnlySpan<byte> tags)
    {
        if (hasTags)
        {
            return StatsdParseError.DuplicateField;
        }

        ReadOnlySpan<byte> text = field[1..];
        bool anyTag = false;
        foreach (byte b in text)
        {
            if (b != (byte)',')
            {
                anyTag = true;
                break;
            }
        }

        if (!anyTag)
        {
            return StatsdParseError.InvalidTags;
        }

        hasTags = true;
        tags = text;
        return StatsdParseError.None;
    }

    // Fields common to events and service checks: only '#' is interpreted; others must be non-empty.
    private static StatsdParseError ParseExtraFields(ReadOnlySpan<byte> fields, bool messageIsLast, ref bool hasTags, ref ReadOnlySpan<byte> tags)
    {
        while (true)
        {
            int pipe = fields.IndexOf((byte)'|');
            ReadOnlySpan<byte> field = pipe < 0 ? fields : fields[..pipe];
            if (field.IsEmpty)
            {
                return StatsdParseError.EmptyField;
            }

            if (messageIsLast && field.StartsWith("m:"u8))
            {
                // The service-check message runs to the end of the line.
                return StatsdParseError.None;
            }

            if (field[0] == (byte)'#')
            {
                StatsdParseError tagError = ParseTagField(field, ref hasTags, ref tags);
                if (tagError != StatsdParseError.None)
                {
                    return tagError;
                }
            }

            if (pipe < 0)
            {
                return StatsdParseError.None;
            }

            fields = fields[(pipe + 1)..];
        }
    }

    private static bool TryParseLength(ReadOnlySpan<byte> text, out int length)
    {
        length = 0;
        if (text.IsEmpty || text.Length > 9)
        {
            return false;
        }

        foreach (byte b in text)
        {
            if (!IsDigit(b))
            {
                return false;
            }

            length = (length * 10) + (b - '0');
        }

        return true;
    }

    private static StatsdParseError ParseEvent(ReadOnlySpan<byte> line, out StatsdLineInfo info)
    {
        info = default;
        ReadOnlySpan<byte> rest = line[3..];
        int close = rest.IndexOf((byte)'}');
        if (close < 0)
        {
            return StatsdParseError.InvalidEvent;
        }

        ReadOnlySpan<byte> lengths = rest[..close];
        int comma = lengths.IndexOf((byte)',');
        if (comma < 0
            || !TryParseLength(lengths[..comma], out int titleLength)
            || !TryParseLength(lengths[(comma + 1)..], out int textLength)
            || titleLength == 0)
        {
            return StatsdParseError.InvalidEvent;
        }

        rest = rest[(close + 1)..];
        if (rest.IsEmpty || rest[0] != (byte)':')
        {
            return StatsdParseError.InvalidEvent;
        }

        rest = rest[1..];
        // title '|' text, both of exactly the announced byte lengths.
        if ((long)titleLength + 1 + textLength > rest.Length || rest[titleLength] != (byte)'|')
        {
            return StatsdParseError.InvalidEvent;
        }

        ReadOnlySpan<byte> title = rest[..titleLength];
        ReadOnlySpan<byte> text = rest.Slice(titleLength + 1, textLength);
        rest = rest[(titleLength + 1 + textLength)..];
        bool hasTags = false;
        ReadOnlySpan<byte> tags = default;
        if (!rest.IsEmpty)
        {
            if (rest[0] != (byte)'|')
            {
                return StatsdParseError.InvalidEvent;
            }

            StatsdParseError fieldError = ParseExtraFields(rest[1..], messageIsLast: false, ref hasTags, ref tags);
            if (fieldError != StatsdParseError.None)
            {
                return fieldError;
            }
        }

        info = new StatsdLineInfo(line, StatsdLineKind.Event, title, StatsdMetricType.None, text, 1.0, hasTags, tags);
        return StatsdParseError.None;
    }

    private static StatsdParseError ParseServiceCheck(ReadOnlySpan<byte> line, out StatsdLineInfo info)
    {
        info = default;
        ReadOnlySpan<byte> rest = line[4..];
        int pipe = rest.IndexOf((byte)'|');
        if (pipe < 0)
        {
            return StatsdParseError.InvalidServiceCheck;
        }

        ReadOnlySpan<byte> name = rest[..pipe];
        if (!IsValidName(name))
        {
            return StatsdParseError.InvalidServiceCheck;
        }

        rest = rest[(pipe + 1)..];
        pipe = rest.IndexOf((byte)'|');
        ReadOnlySpan<byte> status = pipe < 0 ? rest : rest[..pipe];
        if (status.Length != 1 || (uint)(status[0] - '0') > 3)
        {
            return StatsdParseError.InvalidServiceCheck;
        }

        bool hasTags = false;
        ReadOnlySpan<byte> tags = default;
        if (pipe >= 0)
        {
            StatsdParseError fieldError = ParseExtraFields(rest[(pipe + 1)..], messageIsLast: true, ref hasTags, ref tags);
            if (fieldError != StatsdParseError.None)
            {
                return fieldError;
            }
        }

        info = new StatsdLineInfo(line, StatsdLineKind.ServiceCheck, name, StatsdMetricType.None, status, 1.0, hasTags, tags);
        return StatsdParseError.None;
    }
}
