"""What the tests share. Test files import from here, never from each other or from conftest
(test_architecture.py checks it); conftest.py holds only pytest's hooks and fixtures.

  data            the repository's test data (data_file, SEQUENCE)
  dds             this run's block of DDS domains (domain_for)
  threads         wait_until, run_in_threads
  models          the tiny test models (conftest's fixtures build them), the official DINOv2 interpolation
  node_harness    the depth node in this process: injected engine, published messages recorded
  graph           the depth node as a process beside a probe node (ros_probe), over DDS
  scenes          depth scenes and metric references with known answers
  frames          camera frames and NV12 model inputs
  hbm             the hbm_runtime stand-in (test/hbm_sim)
  hostile_images, launch_standin, da3_reference: see each module
"""
