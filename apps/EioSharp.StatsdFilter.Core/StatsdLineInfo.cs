namespace EioSharp.StatsdFilter;

/// <summary>What a StatsD line carries.</summary>
public enum StatsdLineKind
{
    /// <summary>No line (the default value).</summary>
    None = 0,

    /// <summary>A metric: <c>name:value|type|...</c>.</summary>
    Metric,

    /// <summary>A DogStatsD event: <c>_e{title_len,text_len}:title|text|...</c>.</summary>
    Event,

    /// <summary>A DogStatsD service check: <c>_sc|name|status|...</c>.</summary>
    ServiceCheck,
}

/// <summary>A StatsD metric type.</summary>
public enum StatsdMetricType
{
    /// <summary>Not a metric (events, service checks, the default value).</summary>
    None = 0,

    /// <summary><c>c</c>: counter.</summary>
    Counter,

    /// <summary><c>g</c>: gauge (a signed value is a delta).</summary>
    Gauge,

    /// <summary><c>ms</c>: timer, in milliseconds.</summary>
    Timer,

    /// <summary><c>h</c>: histogram.</summary>
    Histogram,

    /// <summary><c>s</c>: set (the value is any text).</summary>
    Set,

    /// <summary><c>d</c>: DogStatsD distribution.</summary>
    Distribution,
}

/// <summary>Why a line was rejected by <see cref="StatsdLine.TryParse(ReadOnlySpan{byte}, out StatsdLineInfo, out StatsdParseError)"/>.</summary>
public enum StatsdParseError
{
    /// <summary>The line is well formed.</summary>
    None = 0,

    /// <summary>The line is empty.</summary>
    Empty,

    /// <summary>A metric line has no <c>:</c> after its name.</summary>
    MissingValue,

    /// <summary>The metric name (or event title, service-check name) is empty or contains <c>|</c> or a control byte.</summary>
    InvalidName,

    /// <summary>A metric line has no <c>|type</c> after its value.</summary>
    MissingType,

    /// <summary>The metric type is not one of <c>c g ms h s d</c>.</summary>
    UnknownType,

    /// <summary>A value is empty or not a number (for numeric types).</summary>
    InvalidValue,

    /// <summary>The <c>|@rate</c> field is not a number with 0 &lt; rate &lt;= 1.</summary>
    InvalidSampleRate,

    /// <summary>The <c>|#</c> tag field is empty.</summary>
    InvalidTags,

    /// <summary>The <c>|T</c> timestamp field is not a decimal integer.</summary>
    InvalidTimestamp,

    /// <summary>The <c>|c:</c> container field is empty.</summary>
    InvalidContainer,

    /// <summary>A field is empty (<c>||</c> or a trailing <c>|</c>).</summary>
    EmptyField,

    /// <summary>A sample rate or tag field appears twice.</summary>
    DuplicateField,

    /// <summary>An event's header, lengths, title or text do not match the DogStatsD event format.</summary>
    InvalidEvent,

    /// <summary>A service check's name or status (0-3) does not match the DogStatsD format.</summary>
    InvalidServiceCheck,
}

/// <summary>The parsed view of one StatsD line; every span points into the original line.</summary>
/// <remarks>
/// <para>
/// Produced by <see cref="StatsdLine.TryParse(ReadOnlySpan{byte}, out StatsdLineInfo)"/>. The line itself
/// is forwarded byte for byte; this view exists for filtering and counting.
/// </para>
/// <para><b>Lifetime</b>: valid as long as the bytes of the line it was parsed from.</para>
/// </remarks>
public readonly ref struct StatsdLineInfo
{
    internal StatsdLineInfo(
        ReadOnlySpan<byte> line,
        StatsdLineKind kind,
        ReadOnlySpan<byte> name,
        StatsdMetricType metricType,
        ReadOnlySpan<byte> value,
        double sampleRate,
        bool hasTags,
        ReadOnlySpan<byte> rawTags)
    {
        Line = line;
        Kind = kind;
        Name = name;
        MetricType = metricType;
        Value = value;
        SampleRate = sampleRate;
        HasTags = hasTags;
        RawTags = rawTags;
    }

    /// <summary>The whole line, as received (without its newline).</summary>
    public ReadOnlySpan<byte> Line { get; }

    /// <summary>Metric, event or service check.</summary>
    public StatsdLineKind Kind { get; }

    /// <summary>The name rules match on: the metric name (text before the first <c>:</c>), the event title, or the service-check name.</summary>
    public ReadOnlySpan<byte> Name { get; }

    /// <summary>The metric type; <see cref="StatsdMetricType.None"/> for events and service checks.</summary>
    public StatsdMetricType MetricType { get; }

    /// <summary>For metrics, the raw value text between the name's <c>:</c> and the type's <c>|</c> (several values are separated by <c>:</c>); for service checks, the status digit; for events, the text.</summary>
    public ReadOnlySpan<byte> Value { get; }

    /// <summary>The <c>|@</c> sample rate, in (0, 1]; 1 when the line has none.</summary>
    public double SampleRate { get; }

    /// <summary>Whether the line has a <c>|#</c> DogStatsD tag field.</summary>
    public bool HasTags { get; }

    /// <summary>The text of the <c>|#</c> field without the <c>#</c>: tags separated by <c>,</c>; empty when there are none.</summary>
    public ReadOnlySpan<byte> RawTags { get; }

    /// <summary>Enumerates the DogStatsD tags of the line (empty entries between commas are skipped).</summary>
    /// <returns>A stack-only enumerator of <see cref="StatsdTag"/> values.</returns>
    public StatsdTagEnumerator GetTags() => new(RawTags);
}

/// <summary>One DogStatsD tag: <c>key</c> or <c>key:value</c>.</summary>
public readonly ref struct StatsdTag
{
    internal StatsdTag(ReadOnlySpan<byte> raw)
    {
        Raw = raw;
        int colon = raw.IndexOf((byte)':');
        if (colon < 0)
        {
            Key = raw;
            Value = default;
            HasValue = false;
        }
        else
        {
            Key = raw[..colon];
            Value = raw[(colon + 1)..];
            HasValue = true;
        }
    }

    /// <summary>The whole tag text.</summary>
    public ReadOnlySpan<byte> Raw { get; }

    /// <summary>The text before the first <c>:</c>, or the whole tag.</summary>
    public ReadOnlySpan<byte> Key { get; }

    /// <summary>The text after the first <c>:</c>; empty when <see cref="HasValue"/> is false.</summary>
    public ReadOnlySpan<byte> Value { get; }

    /// <summary>Whether the tag contains a <c>:</c>.</summary>
    public bool HasValue { get; }
}

/// <summary>A stack-only enumerator over the comma-separated tags of a line.</summary>
public ref struct StatsdTagEnumerator
{
    private ReadOnlySpan<byte> _remaining;
    private StatsdTag _current;

    internal StatsdTagEnumerator(ReadOnlySpan<byte> rawTags)
    {
        _remaining = rawTags;
        _current = default;
    }

    /// <summary>The current tag.</summary>
    public readonly StatsdTag Current => _current;

    /// <summary>Returns this enumerator (enables <c>foreach</c>).</summary>
    /// <returns>This enumerator.</returns>
    public readonly StatsdTagEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next non-empty tag.</summary>
    /// <returns><see langword="true"/> if a tag is available in <see cref="Current"/>.</returns>
    public bool MoveNext()
    {
        while (_remaining.Length > 0)
        {
            int comma = _remaining.IndexOf((byte)',');
            ReadOnlySpan<byte> tag;
            if (comma < 0)
            {
                tag = _remaining;
                _remaining = default;
            }
            else
            {
                tag = _remaining[..comma];
                _remaining = _remaining[(comma + 1)..];
            }

            if (tag.Length > 0)
            {
                _current = new StatsdTag(tag);
                return true;
            }
        }

        _current = default;
        return false;
    }
}
