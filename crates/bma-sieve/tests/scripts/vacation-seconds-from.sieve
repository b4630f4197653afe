require ["vacation", "vacation-seconds"];
vacation :seconds 3600 :from "Secrétariat <ec012345@adm.cfwb.be>" :handle "summer" :mime text:
Content-Type: text/plain; charset=utf-8

Absent.
.
;
