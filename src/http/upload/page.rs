//! The upload page: a plain form that works with scripts off (a
//! `multipart/form-data` POST), and a small script that sends each file
//! with a PUT of its own and shows its progress. Sized for a phone.

use crate::peer_text::escape;

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zc: upload</title>
<style>
body{font:18px/1.4 system-ui,sans-serif;margin:0 auto;padding:1em;max-width:40em}
label,button{display:block;margin:.6em 0}
input[type=file]{font-size:1em;padding:.6em 0;width:100%}
button{font-size:1.1em;padding:.8em;width:100%;min-height:3em}
progress{width:100%;height:1.4em}
li{margin:.4em 0;word-break:break-all}
</style></head><body>
<h1>Send files here</h1>
<form id="f" method="post" enctype="multipart/form-data">
<label>Files <input type="file" name="file" multiple></label>
<label>A folder <input type="file" name="file" webkitdirectory></label>
<button type="submit">Upload</button>
</form>
<ul id="log"></ul>
<script>
const form=document.getElementById('f'),log=document.getElementById('log');
function put(file){
 const path=(file.webkitRelativePath||file.name).split('/').map(encodeURIComponent).join('/');
 const li=document.createElement('li'),bar=document.createElement('progress');
 li.textContent=(file.webkitRelativePath||file.name)+' ';li.appendChild(bar);log.appendChild(li);
 return new Promise(done=>{
  const x=new XMLHttpRequest();x.open('PUT',path);
  x.upload.onprogress=e=>{if(e.lengthComputable){bar.max=e.total;bar.value=e.loaded;}};
  x.onloadend=()=>{li.textContent=(file.webkitRelativePath||file.name)+': '+(x.status==201?'received':(x.responseText||'failed'));done();};
  x.send(file);});
}
form.addEventListener('submit',async e=>{
 e.preventDefault();
 const files=[...form.querySelectorAll('input[type=file]')].flatMap(i=>[...i.files]);
 for(const file of files){await put(file);}
 form.reset();
});
</script>
</body></html>
"#;

pub fn upload_page() -> Vec<u8> {
    PAGE.as_bytes().to_vec()
}

/// What a form POST landed, as a page (scripts off: this is what shows).
pub fn results(lines: &[(Vec<u8>, Result<u64, String>)]) -> Vec<u8> {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>zc: uploaded</title></head><body style=\"font:18px/1.4 sans-serif\">\n<ul>\n",
    );
    for (name, outcome) in lines {
        let name = html(&escape(name));
        let said = match outcome {
            Ok(bytes) => format!("received, {bytes} bytes"),
            Err(why) => format!("refused: {}", html(why)),
        };
        out.push_str(&format!("<li>{name}: {said}</li>\n"));
    }
    out.push_str("</ul>\n<p><a href=\"./\">Upload more</a></p>\n</body></html>\n");
    out.into_bytes()
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
