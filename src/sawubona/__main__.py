"""python -m sawubona"""

from sawubona.cli import main

main()
