namespace EioSharp.StatsdFilter.Tests;

public class PublicApiTests
{
    [Fact]
    public void Public_types_are_pinned()
    {
        string[] types = [.. typeof(FilterRules).Assembly.GetExportedTypes()
            .Select(t => t.FullName!)
            .Order(StringComparer.Ordinal)];
        Assert.Equal(
            [
                "EioSharp.StatsdFilter.BlocklistSyntax",
                "EioSharp.StatsdFilter.DatagramBatcher",
                "EioSharp.StatsdFilter.FilterCounter",
                "EioSharp.StatsdFilter.FilterRules",
                "EioSharp.StatsdFilter.FilterStatistics",
                "EioSharp.StatsdFilter.FilterStatisticsSnapshot",
                "EioSharp.StatsdFilter.StatsdFilterOptions",
                "EioSharp.StatsdFilter.StatsdFilterOptionsException",
                "EioSharp.StatsdFilter.StatsdLine",
                "EioSharp.StatsdFilter.StatsdLineInfo",
                "EioSharp.StatsdFilter.StatsdLineKind",
                "EioSharp.StatsdFilter.StatsdLineSplitter",
                "EioSharp.StatsdFilter.StatsdLineSplitter+LineEnumerator",
                "EioSharp.StatsdFilter.StatsdMetricType",
                "EioSharp.StatsdFilter.StatsdParseError",
                "EioSharp.StatsdFilter.StatsdTag",
                "EioSharp.StatsdFilter.StatsdTagEnumerator",
                "EioSharp.StatsdFilter.StatsdTcpLineFramer",
            ],
            types);
    }

    [Fact]
    public void Classes_are_sealed_or_static()
    {
        foreach (Type type in typeof(FilterRules).Assembly.GetExportedTypes().Where(t => t.IsClass))
        {
            Assert.True(type.IsSealed, type.FullName);
        }
    }
}
