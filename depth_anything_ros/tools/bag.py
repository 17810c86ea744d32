"""bag: depth for an image topic of a rosbag2, written as a new rosbag2 (no ROS install needed)."""
from __future__ import annotations

import sys

HELP = ('run the node\'s pipeline on every image of a rosbag2 topic (sensor_msgs/Image or '
        'CompressedImage; sqlite3 or mcap) and write a new bag with /depth (32FC1), /depth/colorized '
        '(bgr8), the input stamps and headers, and every CameraInfo topic')


def add_arguments(parser):
    from ..tool_support.bag_io import DISTROS, STORAGES
    from ..tool_support.files import add_model_arguments
    from ..core.postprocess import COLORMAPS, RANGE_MODES
    parser.add_argument('bag', help='input rosbag2 (its directory, or an .mcap/.db3 file)')
    parser.add_argument('--topic', required=True, help='image topic to run on, e.g. /camera/image_raw')
    parser.add_argument('--out', required=True, help='output bag directory (must not exist)')
    parser.add_argument('--storage', default='sqlite3', choices=STORAGES, help='output storage (default sqlite3)')
    parser.add_argument('--ros-distro', default='humble', choices=DISTROS,
                        help='message definitions recorded in the output bag (default humble, as on the S100)')
    parser.add_argument('--depth-topic', default='/depth',
                        help='output depth topic; the colorized one is <depth-topic>/colorized')
    add_model_arguments(parser)
    parser.add_argument('--colormap', default='inferno', choices=sorted(COLORMAPS))
    parser.add_argument('--color-range', default='percentile', choices=RANGE_MODES,
                        help='per-frame colour range (default percentile: 2-98 %%)')


def run(args) -> int:
    from ..tool_support.bag_io import BagError, image_topics, process_bag
    from ..tool_support.errors import CliError
    from ..tool_support.files import estimator_from_args, progress
    from ..core.postprocess import Colorizer
    try:
        import rosbags  # noqa: F401
    except ImportError as exc:
        raise CliError('the bag tool needs the rosbags package: pip install rosbags') from exc
    try:
        # Check the bag and topic before the (slow) model load.
        topics = image_topics(args.bag)
        if args.topic not in topics:
            listed = ', '.join(f'{t} ({m})' for t, m in sorted(topics.items())) or 'none'
            raise CliError(f"topic '{args.topic}' is not an image topic of '{args.bag}'; its image topics: {listed}")
        estimator = estimator_from_args(args)
        print(f'model: {estimator.engine.describe()}')
        summary = process_bag(args.bag, args.out, args.topic, estimator, Colorizer(args.colormap, args.color_range),
                              args.storage, args.ros_distro, args.depth_topic,
                              progress=lambda it, total: progress(it, total=total, desc='bag', unit='msg'))
    except BagError as exc:
        raise CliError(str(exc)) from exc
    for reason, count in summary.skipped.items():
        print(f'skipped {count} image(s): {reason}', file=sys.stderr)
    topics_out = ', '.join(summary.topics)
    print(f"wrote '{args.out}' ({args.storage}): {summary.images} depth frames from {args.topic} "
          f'({summary.input_type}), {summary.camera_info} camera_info messages; topics {topics_out}')
    return 0 if summary.images or not summary.skipped else 1
