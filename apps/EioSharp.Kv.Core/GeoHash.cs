namespace EioSharp.Kv;

/// <summary>Redis's geohash (geohash.c, geohash_helper.c of Redis 7.0): 52-bit interleaved scores, neighbors, the
/// search boxes of a radius or box query and the haversine distance with Redis's earth radius, ported so that results
/// equal redis-server's bit for bit.</summary>
internal static class GeoHash
{
    public const int StepMax = 26; // GEO_STEP_MAX: 52 bits
    public const double LongMin = -180, LongMax = 180;
    public const double LatMin = -85.05112878, LatMax = 85.05112878;
    private const double EarthRadiusMeters = 6372797.560856;
    private const double MercatorMax = 20037726.37;
    private const double DegToRad = Math.PI / 180.0;

    internal readonly record struct Bits(ulong Value, int Step)
    {
        public bool IsZero => Value == 0 && Step == 0;
    }

    internal readonly record struct Area(Bits Hash, double LonMin, double LonMax, double LatMinimum, double LatMaximum);

    private static ulong Interleave64(uint xlo, uint ylo)
    {
        ulong x = xlo, y = ylo;
        x = (x | (x << 16)) & 0x0000FFFF0000FFFFUL; y = (y | (y << 16)) & 0x0000FFFF0000FFFFUL;
        x = (x | (x << 8)) & 0x00FF00FF00FF00FFUL; y = (y | (y << 8)) & 0x00FF00FF00FF00FFUL;
        x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0FUL; y = (y | (y << 4)) & 0x0F0F0F0F0F0F0F0FUL;
        x = (x | (x << 2)) & 0x3333333333333333UL; y = (y | (y << 2)) & 0x3333333333333333UL;
        x = (x | (x << 1)) & 0x5555555555555555UL; y = (y | (y << 1)) & 0x5555555555555555UL;
        return x | (y << 1);
    }

    private static ulong Deinterleave64(ulong interleaved)
    {
        ulong x = interleaved, y = interleaved >> 1;
        x &= 0x5555555555555555UL; y &= 0x5555555555555555UL;
        x = (x | (x >> 1)) & 0x3333333333333333UL; y = (y | (y >> 1)) & 0x3333333333333333UL;
        x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0FUL; y = (y | (y >> 2)) & 0x0F0F0F0F0F0F0F0FUL;
        x = (x | (x >> 4)) & 0x00FF00FF00FF00FFUL; y = (y | (y >> 4)) & 0x00FF00FF00FF00FFUL;
        x = (x | (x >> 8)) & 0x0000FFFF0000FFFFUL; y = (y | (y >> 8)) & 0x0000FFFF0000FFFFUL;
        x = (x | (x >> 16)) & 0x00000000FFFFFFFFUL; y = (y | (y >> 16)) & 0x00000000FFFFFFFFUL;
        return x | (y << 32);
    }

    /// <summary>geohashEncode with the given ranges; false outside Redis's limits.</summary>
    public static bool Encode(double longitude, double latitude, int step, out Bits hash,
        double lonMin = LongMin, double lonMax = LongMax, double latMin = LatMin, double latMax = LatMax)
    {
        hash = default;
        if (step > 32 || step == 0) return false;
        if (longitude > LongMax || longitude < LongMin || latitude > LatMax || latitude < LatMin) return false;
        if (latitude < latMin || latitude > latMax || longitude < lonMin || longitude > lonMax) return false;
        double latOffset = (latitude - latMin) / (latMax - latMin);
        double lonOffset = (longitude - lonMin) / (lonMax - lonMin);
        latOffset *= 1UL << step;
        lonOffset *= 1UL << step;
        hash = new Bits(Interleave64((uint)latOffset, (uint)lonOffset), step);
        return true;
    }

    public static Area Decode(Bits hash, double lonMin = LongMin, double lonMax = LongMax, double latMin = LatMin, double latMax = LatMax)
    {
        ulong sep = Deinterleave64(hash.Value);
        double latScale = latMax - latMin, lonScale = lonMax - lonMin;
        uint ilato = (uint)sep, ilono = (uint)(sep >> 32);
        double div = 1UL << hash.Step;
        return new Area(hash,
            lonMin + (ilono * 1.0 / div) * lonScale,
            lonMin + ((ilono + 1u) * 1.0 / div) * lonScale,
            latMin + (ilato * 1.0 / div) * latScale,
            latMin + ((ilato + 1u) * 1.0 / div) * latScale);
    }

    /// <summary>The 52-bit score of a point (geohashEncodeWGS84 at step 26, aligned).</summary>
    public static ulong Score(double longitude, double latitude)
    {
        Encode(longitude, latitude, StepMax, out Bits hash);
        return Align52(hash);
    }

    public static ulong Align52(Bits hash) => hash.Value << (52 - hash.Step * 2);

    /// <summary>C's <c>(uint64_t)</c> of a double as gcc emits it on x86-64 (Redis's decodeGeohash cast): below 2^63 a
    /// signed truncation (out of range: 2^63), from 2^63 a truncation of d - 2^63 with the top bit flipped (so 0 from 2^64
    /// and for NaN).</summary>
    private static ulong CastToUInt64(double d)
    {
        const double TwoPow63 = 9223372036854775808.0;
        static ulong Cvt(double v) => v >= -TwoPow63 && v < TwoPow63 ? unchecked((ulong)(long)v) : 0x8000000000000000UL;
        if (d < TwoPow63) return Cvt(d);
        return Cvt(d - TwoPow63) ^ 0x8000000000000000UL; // NaN lands here too
    }

    /// <summary>decodeGeohash: the center of the score's cell, clamped to the valid ranges (longitude, latitude).</summary>
    public static (double Lon, double Lat) DecodeScore(double score)
    {
        Area a = Decode(new Bits(CastToUInt64(score), StepMax));
        double lon = (a.LonMin + a.LonMax) / 2;
        lon = Math.Clamp(lon, LongMin, LongMax);
        double lat = (a.LatMinimum + a.LatMaximum) / 2;
        lat = Math.Clamp(lat, LatMin, LatMax);
        return (lon, lat);
    }

    /// <summary>The 11-character standard geohash (-90..90 latitude) of a score, as GEOHASH prints it.</summary>
    public static string StandardHash(double score)
    {
        const string alphabet = "0123456789bcdefghjkmnpqrstuvwxyz";
        (double lon, double lat) = DecodeScore(score);
        Encode(lon, lat, StepMax, out Bits hash, -180, 180, -90, 90);
        Span<char> buf = stackalloc char[11];
        for (int i = 0; i < 11; i++)
        {
            int idx = i == 10 ? 0 : (int)((hash.Value >> (52 - (i + 1) * 5)) & 0x1f);
            buf[i] = alphabet[idx];
        }
        return new string(buf);
    }

    private static double DegRad(double ang) => ang * DegToRad;

    private static double RadDeg(double ang) => ang / DegToRad;

    /// <summary>Haversine distance in meters (Redis 7.0's geohashGetDistance).</summary>
    public static double Distance(double lon1d, double lat1d, double lon2d, double lat2d)
    {
        double lat1r = DegRad(lat1d), lon1r = DegRad(lon1d), lat2r = DegRad(lat2d), lon2r = DegRad(lon2d);
        double u = Math.Sin((lat2r - lat1r) / 2);
        double v = Math.Sin((lon2r - lon1r) / 2);
        return 2.0 * EarthRadiusMeters * Math.Asin(Math.Sqrt(u * u + Math.Cos(lat1r) * Math.Cos(lat2r) * v * v));
    }

    private static int EstimateStepsByRadius(double rangeMeters, double lat)
    {
        if (rangeMeters == 0) return 26;
        int step = 1;
        while (rangeMeters < MercatorMax)
        {
            rangeMeters *= 2;
            step++;
        }
        step -= 2;
        if (lat > 66 || lat < -66)
        {
            step--;
            if (lat > 80 || lat < -80) step--;
        }
        if (step < 1) step = 1;
        if (step > 26) step = 26;
        return step;
    }

    private static Bits MoveX(Bits hash, int d)
    {
        if (d == 0) return hash;
        ulong x = hash.Value & 0xaaaaaaaaaaaaaaaaUL;
        ulong y = hash.Value & 0x5555555555555555UL;
        ulong zz = 0x5555555555555555UL >> (64 - hash.Step * 2);
        if (d > 0) x += zz + 1;
        else
        {
            x |= zz;
            x -= zz + 1;
        }
        x &= 0xaaaaaaaaaaaaaaaaUL >> (64 - hash.Step * 2);
        return hash with { Value = x | y };
    }

    private static Bits MoveY(Bits hash, int d)
    {
        if (d == 0) return hash;
        ulong x = hash.Value & 0xaaaaaaaaaaaaaaaaUL;
        ulong y = hash.Value & 0x5555555555555555UL;
        ulong zz = 0xaaaaaaaaaaaaaaaaUL >> (64 - hash.Step * 2);
        if (d > 0) y += zz + 1;
        else
        {
            y |= zz;
            y -= zz + 1;
        }
        y &= 0x5555555555555555UL >> (64 - hash.Step * 2);
        return hash with { Value = x | y };
    }

    /// <summary>A search shape: a circle (radius) or a box (width, height), in units of <paramref name="Conversion"/> meters.</summary>
    internal readonly record struct Shape(double Lon, double Lat, bool IsBox, double Radius, double Width, double Height, double Conversion);

    /// <summary>geohashCalculateAreasByShapeWGS84: the center cell and its 8 neighbors (zeroed when useless), in Redis's
    /// order: center, north, south, east, west, north-east, north-west, south-east, south-west.</summary>
    public static Bits[] AreasByShape(in Shape shape)
    {
        double height = shape.Conversion * (shape.IsBox ? shape.Height / 2 : shape.Radius);
        double width = shape.Conversion * (shape.IsBox ? shape.Width / 2 : shape.Radius);
        double latDelta = RadDeg(height / EarthRadiusMeters);
        double lonDeltaTop = RadDeg(width / EarthRadiusMeters / Math.Cos(DegRad(shape.Lat + latDelta)));
        double lonDeltaBottom = RadDeg(width / EarthRadiusMeters / Math.Cos(DegRad(shape.Lat - latDelta)));
        bool southern = shape.Lat < 0;
        double minLon = southern ? shape.Lon - lonDeltaBottom : shape.Lon - lonDeltaTop;
        double maxLon = southern ? shape.Lon + lonDeltaBottom : shape.Lon + lonDeltaTop;
        double minLat = shape.Lat - latDelta;
        double maxLat = shape.Lat + latDelta;

        double radiusMeters = shape.IsBox ? Math.Sqrt((shape.Width / 2) * (shape.Width / 2) + (shape.Height / 2) * (shape.Height / 2)) : shape.Radius;
        radiusMeters *= shape.Conversion;
        int steps = EstimateStepsByRadius(radiusMeters, shape.Lat);
        Encode(shape.Lon, shape.Lat, steps, out Bits hash);
        Bits[] n = Neighbors(hash);
        Area area = Decode(hash);

        Area north = Decode(n[1]), south = Decode(n[2]), east = Decode(n[3]), west = Decode(n[4]);
        bool decrease = north.LatMaximum < maxLat || south.LatMinimum > minLat || east.LonMax < maxLon || west.LonMin > minLon;
        if (steps > 1 && decrease)
        {
            steps--;
            Encode(shape.Lon, shape.Lat, steps, out hash);
            n = Neighbors(hash);
            area = Decode(hash);
        }
        if (steps >= 2)
        {
            if (area.LatMinimum < minLat) n[2] = n[8] = n[7] = default; // south, south-west, south-east
            if (area.LatMaximum > maxLat) n[1] = n[5] = n[6] = default; // north, north-east, north-west
            if (area.LonMin < minLon) n[4] = n[8] = n[6] = default; // west, south-west, north-west
            if (area.LonMax > maxLon) n[3] = n[7] = n[5] = default; // east, south-east, north-east
        }
        return n;
    }

    // [center, north, south, east, west, north-east, north-west, south-east, south-west]
    private static Bits[] Neighbors(Bits hash) =>
    [
        hash,
        MoveY(hash, 1),
        MoveY(hash, -1),
        MoveX(hash, 1),
        MoveX(hash, -1),
        MoveY(MoveX(hash, 1), 1),
        MoveY(MoveX(hash, -1), 1),
        MoveY(MoveX(hash, 1), -1),
        MoveY(MoveX(hash, -1), -1),
    ];

    /// <summary>geoWithinShape: whether the point of a score is inside the shape, and its distance (meters) from the center.</summary>
    public static bool WithinShape(in Shape shape, double score, out double lon, out double lat, out double distance)
    {
        (lon, lat) = DecodeScore(score);
        if (!shape.IsBox)
        {
            distance = Distance(shape.Lon, shape.Lat, lon, lat);
            return distance <= shape.Radius * shape.Conversion;
        }
        double lonDistance = Distance(lon, lat, shape.Lon, lat);
        double latDistance = Distance(lon, lat, lon, shape.Lat);
        distance = 0;
        if (lonDistance > shape.Width * shape.Conversion / 2 || latDistance > shape.Height * shape.Conversion / 2) return false;
        distance = Distance(shape.Lon, shape.Lat, lon, lat);
        return true;
    }
}
